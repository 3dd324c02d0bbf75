// A real control plane and node agent for one suite, on free loopback ports.
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { startControlPlane, type ControlPlane } from '../../src/local/cluster/control-plane.ts';
import { kubeTools } from '../../src/local/cluster/kube-tools.ts';
import { CRD_DIR, IMAGE_ENTRYPOINT, REPO_ROOT } from '../../src/local/cluster/local-cluster.ts';
import { KINFER_IMAGES, NodeAgent } from '../../src/local/cluster/node-agent.ts';
import { freePort } from './ports.ts';
import { runCommand, type CommandResult } from './processes.ts';

export interface TestCluster {
  cp: ControlPlane;
  /** The FAKE kubelet; absent when the suite wants Pods to stay Pending. */
  agent: NodeAgent | undefined;
  kc: k8s.KubeConfig;
  core: k8s.CoreV1Api;
  batch: k8s.BatchV1Api;
  dir: string;
  kubectl(args: string[], stdin?: string): Promise<CommandResult>;
  stop(): Promise<void>;
}

export async function startTestCluster(node: { fakeGpus?: number; taints?: k8s.V1Taint[]; nodeAgent?: boolean; crd?: boolean } = {}): Promise<TestCluster> {
  const dir = mkdtempSync(join(process.env.KINFER_TEST_DIR!, 'cluster-'));
  const etcdPort = await freePort();
  const cp = await startControlPlane({ dir, apiserverPort: await freePort(), etcdPort, etcdPeerPort: await freePort() });
  const gpus = node.fakeGpus ?? 0;
  const agent =
    node.nodeAgent === false
      ? undefined
      : new NodeAgent({
          kubeconfig: cp.kubeconfig,
          nodeName: 'kinfer-test-node',
          labels: gpus > 0 ? { 'kinfer.io/accelerator': 'fake-nvidia-gpu' } : {},
          taints: node.taints ?? [],
          capacity: { cpu: '2', memory: '8Gi', pods: '110', ...(gpus > 0 ? { 'nvidia.com/gpu': String(gpus) } : {}) },
          pullableImages: KINFER_IMAGES,
          workingDirs: { '/app': REPO_ROOT },
          imageEntrypoint: IMAGE_ENTRYPOINT,
          logDir: join(dir, 'pods'),
          // TMPDIR: the test folder's (global-setup.ts), as a container has its own /tmp.
          baseEnv: { PATH: process.env.PATH!, HOME: process.env.HOME ?? '/tmp', ...(process.env.TMPDIR ? { TMPDIR: process.env.TMPDIR } : {}) },
        });
  await agent?.start();
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(cp.kubeconfig);
  const { kubectl: kubectlBin } = kubeTools();
  const kubectl = (args: string[], stdin?: string) => runCommand(kubectlBin, ['--kubeconfig', cp.kubeconfig, ...args], { stdin });
  if (node.crd !== false) {
    const crd = await kubectl(['apply', '--server-side', '-f', CRD_DIR]);
    if (crd.code !== 0) throw new Error(`CRD install failed: ${crd.stderr}`);
    await kubectl(['wait', '--for=condition=Established', 'crd/inferencejobs.kinfer.io', '--timeout=30s']);
  }
  return {
    cp,
    agent,
    kc,
    core: kc.makeApiClient(k8s.CoreV1Api),
    batch: kc.makeApiClient(k8s.BatchV1Api),
    dir,
    kubectl,
    async stop() {
      await agent?.stop();
      await cp.stop();
    },
  };
}

/** Polls until `check` returns a value (not undefined), or fails after `timeoutMs`. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
