// `kinfer cluster up | down` as a user runs them: a real etcd, kube-apiserver and
// kube-controller-manager and the node agent, started in the background, their pids in
// KINFER_HOME/cluster/state.json. Whatever happens to `up` (done, or Ctrl-C while it starts),
// nothing of it is left running that `down` cannot stop.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { freePort } from '../support/ports.ts';
import { alive, runCommand, startCommand } from '../support/processes.ts';

const KINFER = resolve('bin/kinfer');
/** The ones still running (a zombie, exited and not yet reaped, is not). */
const running = (pids: number[]) => pids.filter((pid) => alive(pid));

/** A KINFER_HOME and the ports of one cluster (etcd's peer port is the next one). */
async function setting() {
  const home = mkdtempSync(join(process.env.KINFER_TEST_DIR!, 'cluster-cli-'));
  const etcdPort = await freePort();
  const env = {
    ...process.env,
    NODE_OPTIONS: '',
    KINFER_HOME: home,
    KINFER_CLUSTER_API_PORT: String(await freePort()),
    KINFER_CLUSTER_ETCD_PORT: String(etcdPort),
  };
  const stateFile = join(home, 'cluster', 'state.json');
  const pids = () => {
    const now = (JSON.parse(readFileSync(stateFile, 'utf8')) as { pids: number[] }).pids;
    seen.push(...now);
    return now;
  };
  return { home, env, stateFile, pids };
}

/** Every pid a test saw: a test that fails leaves no control plane running behind it. */
const seen: number[] = [];
afterEach(() => {
  for (const pid of running(seen.splice(0))) process.kill(pid, 'SIGKILL');
});

describe('kinfer cluster', () => {
  it('up starts the control plane and a node in the background; down stops every process of it', async () => {
    const { env, pids, stateFile } = await setting();
    const up = await runCommand(KINFER, ['cluster', 'up'], { env });
    expect({ code: up.code, stderr: up.stderr }).toEqual({ code: 0, stderr: '' });
    const kubeconfig = /export KUBECONFIG=(\S+)/.exec(up.stdout)![1]!;
    const started = pids();
    // etcd, the API server, the controller manager, the node agent.
    expect(running(started)).toEqual(started);
    const nodes = await runCommand('kubectl', ['--kubeconfig', kubeconfig, 'get', 'nodes', '-o', 'name'], { env });
    expect(nodes.stdout.trim()).toBe('node/kinfer-local-node');
    const down = await runCommand(KINFER, ['cluster', 'down'], { env });
    expect({ code: down.code, stdout: down.stdout }).toEqual({ code: 0, stdout: 'local cluster stopped\n' });
    expect(running(started)).toEqual([]);
    expect(existsSync(stateFile)).toBe(false);
  }, 120_000);

  // The processes run detached: killed before it was done, `up` left them running, with no
  // state.json for `down` to find them by.
  it('Ctrl-C while up waits for the node: stops what it started, exits 130, and up starts again', async () => {
    const { env, pids, stateFile } = await setting();
    const up = startCommand(KINFER, ['cluster', 'up'], { env });
    // The node agent has started (its pid saved) and has not registered yet (that takes it a
    // second): every process is up, and `up` waits.
    const agentSaved = () => existsSync(stateFile) && pids().length === 4;
    for (const deadline = Date.now() + 60_000; !agentSaved() && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 20));
    const started = pids();
    expect(started).toHaveLength(4);
    up.child.kill('SIGINT');
    expect(await up.closed).toBe(130);
    expect(up.stderr()).toBe('kinfer: stopping what has started\nkinfer: error: cluster up interrupted; what it had started is stopped\n');
    expect(running(started)).toEqual([]);
    expect(existsSync(stateFile)).toBe(false);
    // Its ports and data are free again.
    const again = await runCommand(KINFER, ['cluster', 'up'], { env });
    expect({ code: again.code, stderr: again.stderr }).toEqual({ code: 0, stderr: '' });
    const restarted = pids();
    expect((await runCommand(KINFER, ['cluster', 'down'], { env })).code).toBe(0);
    expect(running(restarted)).toEqual([]);
  }, 180_000);
});
