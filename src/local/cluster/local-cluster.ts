// `kinfer cluster up|down`: the local control plane, the InferenceJob CRD and the node agent as
// background processes, their pids in {dir}/state.json so that `down` stops exactly them.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isProcessAlive, stopChild } from '../../process/local-processes.ts';
import { startControlPlane } from './control-plane.ts';
import { kubeTools } from './kube-tools.ts';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const CRD_DIR = join(REPO_ROOT, 'deploy', 'crds');
export const CHART_DIR = join(REPO_ROOT, 'charts', 'kinfer');
/** The image's entrypoint script, run from the checkout: the node agent's stand-in for the image. */
export const IMAGE_ENTRYPOINT = [join(REPO_ROOT, 'trainer-image', 'entrypoint.sh')];

interface State {
  server: string;
  kubeconfig: string;
  pids: number[];
}

export interface UpOptions {
  dir: string;
  apiserverPort: number;
  etcdPort: number;
  fakeGpus: number;
  /** Aborted (Ctrl-C): heard between steps; what has started is stopped, and ClusterUpInterrupted thrown. */
  signal?: AbortSignal;
}

export class ClusterUpInterrupted extends Error {
  constructor() {
    super('cluster up interrupted; what it had started is stopped');
    this.name = 'ClusterUpInterrupted';
  }
}

export async function clusterUp(opts: UpOptions): Promise<State> {
  const stateFile = join(opts.dir, 'state.json');
  if (existsSync(stateFile)) {
    const state = JSON.parse(readFileSync(stateFile, 'utf8')) as State;
    if (state.pids.some((pid) => isProcessAlive(pid))) throw new Error(`a local cluster is already running (${state.server}); run "kinfer cluster down" first`);
  }
  mkdirSync(opts.dir, { recursive: true });
  const cp = await startControlPlane({
    dir: opts.dir,
    apiserverPort: opts.apiserverPort,
    etcdPort: opts.etcdPort,
    etcdPeerPort: opts.etcdPort + 1,
    detached: true,
  });
  // Saved at each step: the processes run detached, and `down` must find them whatever becomes of
  // this one (killed before it was done, they were left running with no state to stop them by).
  let agent: ChildProcess | undefined;
  const save = (): State => {
    const state: State = { server: cp.server, kubeconfig: cp.kubeconfig, pids: [...cp.pids, ...(agent?.pid ? [agent.pid] : [])] };
    writeFileSync(stateFile, JSON.stringify(state, null, 2));
    return state;
  };
  const interrupted = () => {
    if (opts.signal?.aborted) throw new ClusterUpInterrupted();
  };
  try {
    save();
    interrupted();
    execFileSync(kubeTools().kubectl, ['--kubeconfig', cp.kubeconfig, 'apply', '--server-side', '-f', CRD_DIR], { stdio: ['ignore', 'ignore', 'pipe'] });
    interrupted();
    const log = openSync(join(opts.dir, 'logs', 'node-agent.log'), 'a');
    agent = spawn(process.execPath, [fileURLToPath(new URL('./node-agent-main.ts', import.meta.url))], {
      detached: true,
      stdio: ['ignore', log, log],
      env: {
        ...process.env,
        KUBECONFIG: cp.kubeconfig,
        KINFER_NODE_FAKE_GPUS: String(opts.fakeGpus),
        KINFER_NODE_WORKDIRS: JSON.stringify({ '/app': REPO_ROOT }),
        KINFER_NODE_IMAGE_ENTRYPOINT: JSON.stringify(IMAGE_ENTRYPOINT),
        KINFER_NODE_LOG_DIR: join(opts.dir, 'pods'),
      },
    });
    agent.unref();
    save();
    const deadline = Date.now() + 30_000;
    const kubectl = kubeTools().kubectl;
    for (;;) {
      interrupted();
      const nodes = execFileSync(kubectl, ['--kubeconfig', cp.kubeconfig, 'get', 'nodes', '-o', 'name']).toString();
      if (nodes.trim() !== '') break;
      if (Date.now() > deadline) throw new Error(`the node agent did not register a Node (log: ${join(opts.dir, 'logs', 'node-agent.log')})`);
      await new Promise((r) => setTimeout(r, 200));
    }
    return save();
  } catch (err) {
    // The agent too (it was left running when it did not register), before the control plane.
    if (agent) await stopChild(agent, 'SIGTERM', 15_000);
    await cp.stop();
    rmSync(stateFile, { force: true });
    throw err;
  }
}

export async function clusterDown(dir: string): Promise<boolean> {
  const stateFile = join(dir, 'state.json');
  if (!existsSync(stateFile)) return false;
  const state = JSON.parse(readFileSync(stateFile, 'utf8')) as State;
  // Agent first, etcd last: the reverse of start-up.
  for (const pid of [...state.pids].reverse()) {
    if (!isProcessAlive(pid)) continue;
    process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + 15_000;
    while (isProcessAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    if (isProcessAlive(pid)) process.kill(pid, 'SIGKILL');
  }
  rmSync(stateFile);
  return true;
}

/**
 * Some of the chart's templates rendered for the API server behind `kubeconfig`, as `helm install`
 * renders them there (`.Capabilities.APIVersions` from its discovery), without helm's install
 * checks: `helm template` told every kind the server serves.
 */
export function renderChartFor(kubeconfig: string, templates: string[]): string {
  const { kubectl, helm } = kubeTools();
  const [header = '', ...rows] = execFileSync(kubectl, ['--kubeconfig', kubeconfig, 'api-resources', '-o', 'wide']).toString().split('\n');
  // Columns at the header's offsets: SHORTNAMES is often empty.
  const column = (row: string, name: string, next: string) => row.slice(header.indexOf(name), header.indexOf(next)).trim();
  const apiVersions = rows.flatMap((row) => {
    const [version, kind] = [column(row, 'APIVERSION', 'NAMESPACED'), column(row, 'KIND', 'VERBS')];
    return version && kind ? ['--api-versions', `${version}/${kind}`] : [];
  });
  const showOnly = templates.flatMap((t) => ['--show-only', t]);
  return execFileSync(helm, ['template', 'kinfer', CHART_DIR, '--set', 'database.url=postgres://x', ...showOnly, ...apiVersions]).toString();
}
