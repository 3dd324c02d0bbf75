// A real Kubernetes control plane on loopback: etcd, kube-apiserver and kube-controller-manager
// (Job, garbage-collector, Deployment and ReplicaSet controllers), flags as controller-runtime's envtest. No scheduler
// and no kubelet: the node agent (node-agent.ts) binds and runs Pods. Writes a kubeconfig.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { stopChild } from '../../process/local-processes.ts';
import { controlPlaneBinaries } from './binaries.ts';
import { ensurePki } from './pki.ts';

export interface ControlPlaneOptions {
  /** Everything lives here: pki/, etcd/, logs/, kubeconfig. */
  dir: string;
  apiserverPort: number;
  etcdPort: number;
  etcdPeerPort: number;
  /** Survive the parent (for `kinfer cluster up`); tests keep them attached. */
  detached?: boolean;
}

export interface ControlPlane {
  server: string;
  kubeconfig: string;
  pids: number[];
  /** Kills the API server, waits `downMs`, starts it again (fault injection in tests). */
  restartApiserver(downMs: number): Promise<void>;
  stop(): Promise<void>;
}

function startProcess(binary: string, args: string[], logFile: string, detached: boolean): ChildProcess {
  const log = openSync(logFile, 'a');
  const child = spawn(binary, args, { stdio: ['ignore', log, log], detached });
  if (detached) child.unref();
  return child;
}

async function waitFor(what: string, child: ChildProcess, logFile: string, probe: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      const tail = (await readFile(logFile, 'utf8')).slice(-2000);
      throw new Error(`${what} exited with code ${child.exitCode}:\n${tail}`);
    }
    if (await probe().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} not ready after ${timeoutMs} ms (log: ${logFile})`);
}

export function kubeconfigYaml(server: string, pki: { caCert: string; adminCert: string; adminKey: string }): string {
  return `apiVersion: v1
kind: Config
clusters:
  - name: kinfer-local
    cluster:
      server: ${server}
      certificate-authority: ${pki.caCert}
users:
  - name: kinfer-admin
    user:
      client-certificate: ${pki.adminCert}
      client-key: ${pki.adminKey}
contexts:
  - name: kinfer-local
    context:
      cluster: kinfer-local
      user: kinfer-admin
      namespace: default
current-context: kinfer-local
`;
}

export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  const bins = controlPlaneBinaries();
  const logs = join(opts.dir, 'logs');
  mkdirSync(logs, { recursive: true });
  const pki = ensurePki(join(opts.dir, 'pki'));
  const detached = opts.detached ?? false;
  const children: ChildProcess[] = [];
  // SIGTERM, then SIGKILL after 5 s: the API server's graceful shutdown can wait on open watches.
  const stop = async () => {
    await Promise.all([...children].reverse().map((c) => stopChild(c, 'SIGTERM', 5000)));
  };
  try {
    const etcdUrl = `http://127.0.0.1:${opts.etcdPort}`;
    const peerUrl = `http://127.0.0.1:${opts.etcdPeerPort}`;
    const etcdLog = join(logs, 'etcd.log');
    const etcd = startProcess(
      bins.etcd,
      [
        `--data-dir=${join(opts.dir, 'etcd')}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=default=${peerUrl}`,
        '--unsafe-no-fsync',
      ],
      etcdLog,
      detached,
    );
    children.push(etcd);
    await waitFor('etcd', etcd, etcdLog, async () => (await fetch(`${etcdUrl}/health`)).ok);

    const server = `https://127.0.0.1:${opts.apiserverPort}`;
    const apiLog = join(logs, 'kube-apiserver.log');
    const startApiserver = () =>
      startProcess(
        bins.kubeApiserver,
        [
          `--etcd-servers=${etcdUrl}`,
          `--cert-dir=${pki.dir}`,
          `--tls-cert-file=${pki.serverCert}`,
          `--tls-private-key-file=${pki.serverKey}`,
          `--client-ca-file=${pki.caCert}`,
          `--secure-port=${opts.apiserverPort}`,
          '--bind-address=127.0.0.1',
          '--advertise-address=127.0.0.1',
          '--service-cluster-ip-range=10.0.0.0/24',
          '--authorization-mode=RBAC',
          '--service-account-issuer=https://kubernetes.default.svc',
          `--service-account-key-file=${pki.serviceAccountPub}`,
          `--service-account-signing-key-file=${pki.serviceAccountKey}`,
          // As envtest: no ServiceAccount admission, so Pods need no token controller.
          '--disable-admission-plugins=ServiceAccount',
          '--allow-privileged=true',
          // The chart's MutatingAdmissionPolicy (the InferenceJob's finalizer at creation): GA
          // from Kubernetes 1.36, beta and off by default in this 1.34.
          '--feature-gates=MutatingAdmissionPolicy=true',
          '--runtime-config=admissionregistration.k8s.io/v1beta1=true',
        ],
        apiLog,
        detached,
      );
    let apiserver = startApiserver();
    children.push(apiserver);
    const [ca, cert, key] = await Promise.all([readFile(pki.caCert), readFile(pki.adminCert), readFile(pki.adminKey)]);
    const apiserverReady = async (child: ChildProcess) => {
      const tls = new Agent({ connect: { ca, cert, key } });
      try {
        await waitFor('kube-apiserver', child, apiLog, async () => {
          const res = await request(`${server}/readyz`, { dispatcher: tls });
          await res.body.dump();
          return res.statusCode === 200;
        });
      } finally {
        await tls.close();
      }
    };
    await apiserverReady(apiserver);
    /** Kills the API server, waits `downMs`, starts it again on the same port and data (fault injection). */
    const restartApiserver = async (downMs: number) => {
      await stopChild(apiserver, 'SIGKILL', 5000);
      await new Promise((r) => setTimeout(r, downMs));
      const next = startApiserver();
      children.splice(children.indexOf(apiserver), 1, next);
      apiserver = next;
      await apiserverReady(next);
    };

    const kubeconfig = join(opts.dir, 'kubeconfig');
    writeFileSync(kubeconfig, kubeconfigYaml(server, pki), { mode: 0o600 });
    const kcmLog = join(logs, 'kube-controller-manager.log');
    const kcm = startProcess(
      bins.kubeControllerManager,
      [
        `--kubeconfig=${kubeconfig}`,
        '--controllers=job-controller,garbage-collector-controller,deployment-controller,replicaset-controller,clusterrole-aggregation-controller',
        '--leader-elect=false',
        '--secure-port=0',
      ],
      kcmLog,
      detached,
    );
    children.push(kcm);
    // The controller manager has no health endpoint with --secure-port=0: give it a moment to fail.
    await new Promise((r) => setTimeout(r, 500));
    if (kcm.exitCode !== null) throw new Error(`kube-controller-manager exited: ${(await readFile(kcmLog, 'utf8')).slice(-2000)}`);
    return { server, kubeconfig, pids: children.map((c) => c.pid!), restartApiserver, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
