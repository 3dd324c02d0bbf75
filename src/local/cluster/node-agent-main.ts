// The node agent as its own process (started by `kinfer cluster up`). Configuration by env:
// KUBECONFIG, KINFER_NODE_NAME, KINFER_NODE_FAKE_GPUS (advertised nvidia.com/gpu: a FAKE, no GPU
// is used), KINFER_NODE_PULLABLE_IMAGES (regex), KINFER_NODE_WORKDIRS (JSON {"/app": "/repo"}),
// KINFER_NODE_IMAGE_ENTRYPOINT (JSON argv standing in for images' ENTRYPOINT), KINFER_NODE_LOG_DIR.
import { availableParallelism, totalmem } from 'node:os';
import { KINFER_IMAGES, NodeAgent } from './node-agent.ts';

const env = process.env;
const gpus = Number(env.KINFER_NODE_FAKE_GPUS ?? 0);
const agent = new NodeAgent({
  kubeconfig: env.KUBECONFIG!,
  nodeName: env.KINFER_NODE_NAME ?? 'kinfer-local-node',
  labels: gpus > 0 ? { 'kinfer.io/accelerator': 'fake-nvidia-gpu' } : {},
  taints: [],
  capacity: {
    cpu: String(availableParallelism()),
    memory: `${Math.floor(totalmem() / 2 ** 20)}Mi`,
    pods: '110',
    ...(gpus > 0 ? { 'nvidia.com/gpu': String(gpus) } : {}),
  },
  pullableImages: env.KINFER_NODE_PULLABLE_IMAGES ? new RegExp(env.KINFER_NODE_PULLABLE_IMAGES) : KINFER_IMAGES,
  workingDirs: JSON.parse(env.KINFER_NODE_WORKDIRS ?? '{}'),
  imageEntrypoint: JSON.parse(env.KINFER_NODE_IMAGE_ENTRYPOINT ?? '[]'),
  logDir: env.KINFER_NODE_LOG_DIR ?? 'pods',
  // Node's compile cache (bin/with-node's), as an image would carry one: a pod's node starts faster.
  baseEnv: { PATH: env.PATH ?? '/usr/bin:/bin', HOME: env.HOME ?? '/tmp', ...(env.NODE_COMPILE_CACHE ? { NODE_COMPILE_CACHE: env.NODE_COMPILE_CACHE } : {}) },
  log: (msg) => process.stderr.write(`${msg}\n`),
});
// The clean stop is in place before the agent starts: `cluster up` reports the cluster up once the
// Node is registered, and a `cluster down` right after must not find Node's own SIGTERM handling
// (the process ended by the signal, its containers' processes left running).
const started = agent.start();
const stop = () => {
  started
    .catch(() => undefined)
    .then(() => agent.stop())
    .then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`node agent did not stop cleanly: ${(err as Error).message}\n`);
        process.exit(1);
      },
    );
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
await started;
process.stderr.write(`node agent ready\n`);
