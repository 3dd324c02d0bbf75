// The kinfer command line: `serve` (the stack on embedded defaults), `demo`, `run` (local),
// `samples` (example data to any storage) and `cluster` (a local control plane).
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import pLimit from 'p-limit';
import { packageVersion } from '../controller/api/capabilities.ts';
import { buildSamples } from '../samples/write-samples.ts';
import { StorageClient } from '../storage/object-store.ts';
import { ApiClient, localToken } from './api-client.ts';
import { addJobCommands } from './job-commands.ts';
import { CliError, EXIT } from './cli-error.ts';
import { localRun, type LocalRunOptions } from './local-run.ts';
import type { Stack } from './stack.ts';
import { exitWhenReaderGone } from './reader-gone.ts';
import { exitCodeOf, onStopSignals, takeStopSignals } from './stop-signals.ts';

// `serve`, `demo` and `cluster` run local stand-ins (embedded Postgres, a local control plane):
// loaded only by the verbs that need them, which the image does not ship (src/local).

const int = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive integer`);
  return n;
};
/** The exit code of a command line that asked for nothing kinfer does (`kinfer run`'s "refused"). */
const USAGE_ERROR = EXIT.refused;
const env = process.env;
const home = env.KINFER_HOME ?? '.kinfer';
const ports = {
  apiPort: Number(env.KINFER_API_PORT ?? 8080),
  callbackPort: Number(env.KINFER_CALLBACK_PORT ?? 8081),
  predictorPort: Number(env.KINFER_PREDICTOR_PORT ?? 8082),
  pgPort: Number(env.KINFER_PG_PORT ?? 54329),
};
const print = (line: string) => process.stdout.write(`${line}\n`);
exitWhenReaderGone();

const program = new Command('kinfer')
  .description('Evaluate and run computer-vision models: test runs and inference jobs')
  .version(packageVersion(), '-V, --version', "print kinfer's version")
  .showHelpAfterError(false)
  .configureOutput({ outputError: (str, write) => write(`kinfer: ${str.replace(/^error: /, '')}`) })
  // A usage error (an unknown option or command, an argument missing or invalid) exits 2, as
  // argparse's and the shell's do, where commander's default is 1: 1 is what `kinfer run` (some
  // images unreadable) and `kinfer watch` (a job that did not complete) say about the work.
  // Inherited by every command defined after this.
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : USAGE_ERROR));

program
  .command('serve')
  .description('run the controller and callback service on embedded defaults (Postgres, file storage, subprocess runners)')
  .action(async () => {
    // Ctrl-C during start-up stops what has started, and `serve` exits 0, as after it.
    let stack: Stack | undefined;
    const startUp = new AbortController();
    await takeStopSignals(env, () => {
      if (stack) return void stack.stop().then(() => process.exit(0));
      process.stderr.write('kinfer: stopping what has started\n');
      startUp.abort();
    });
    const { startStack, StackStartInterrupted } = await import('./stack.ts');
    try {
      stack = await startStack({
        home,
        ...ports,
        env,
        serviceLogs: 'inherit',
        // A service that keeps dying: the stack is already stopped; say so with the exit code.
        onGiveUp: () => process.exit(1),
        signal: startUp.signal,
      });
    } catch (err) {
      if (err instanceof StackStartInterrupted) process.exit(0);
      throw err;
    }
    print(
      `kinfer is up: dashboard ${stack.apiUrl.replace(/\/api\/v1$/, '')}/#token=${stack.adminToken} (signed in as the local admin), API ${stack.apiUrl}, predictions ${stack.predictorUrl}/predict (callback service ${stack.callbackUrl}, artifacts ${stack.artifactsUri}). Ctrl-C stops it.`,
    );
    print(
      `The admin API token is in ${join(stack.home, 'admin-token')} (the CLI on this machine uses it): curl -H "Authorization: Bearer $(cat ${join(stack.home, 'admin-token')})" ${stack.apiUrl}/test-runs`,
    );
  });

program
  .command('demo')
  .description('start the stack, run a test run and an inference job on generated data, print the results, stop')
  .action(async () => {
    const { runDemo } = await import('./demo.ts');
    const interrupted = new AbortController();
    await takeStopSignals(env, (signal) => interrupted.abort(signal));
    process.exitCode = await runDemo({ home, ...ports, signal: interrupted.signal }, print);
  });

const num = (name: string, min: number, max: number) => (value: string) => {
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be a number from ${min} to ${max}`);
  return n;
};

program
  .command('run')
  .description('run a model on local images, without a server, through the same admission and runner as a job (every task)')
  .requiredOption('--checkpoint <path>', 'ONNX model (local path, file:// or s3://)')
  .option('--image <path>', 'one image')
  .option('--input-dir <dir>', 'every image under a folder (writes batch_results.json)')
  .option(
    '--task <task>',
    "the task, when the model's metadata does not say it (image_classification, object_detection, instance_segmentation, semantic_segmentation, pose_estimation)",
  )
  .option('--output-dir <dir>', 'where batch_results.json and the visualizations go (default: batch_results.json in the current folder, no pictures)')
  .option('--conf <c>', 'object tasks: minimum confidence (default 0.25, as Ultralytics predict)', num('--conf', 0, 1))
  .option('--iou <i>', 'object tasks: NMS IoU threshold (default 0.7)', num('--iou', 0, 1))
  .option('--max-det <n>', 'object tasks: at most this many objects per image (default 300)', int('--max-det'))
  .option('--xai <method>', 'explain each prediction (gradcam, lime, ...)')
  .option('--json', 'one image: print its result as the API shows it, nothing else')
  .option('--top-k <n>', 'classification: classes to show per image', int('--top-k'), 5)
  .option('--batch-size <n>', 'images per inference call', int('--batch-size'), 16)
  .addHelpText(
    'after',
    '\nExit codes: 0 every image processed; 1 some images could not be read (listed; the others are done);\n2 refused (missing checkpoint, image or folder, a model that cannot serve the task, no images, an invalid option); 3 the run failed;\n130 interrupted (Ctrl-C; 143 for SIGTERM): batch_results.json not written.',
  )
  .action(async (opts: LocalRunOptions) => {
    process.exitCode = await localRun(opts, print);
  });

program
  .command('samples')
  .description('write the sample model and labeled dataset (the example jobs use them) to a folder or s3:// prefix')
  .argument('<uri>', 'destination: a local folder, file:// or s3://bucket/prefix (S3_ENDPOINT, AWS_* from the environment)')
  .option('--per-class <n>', 'labeled images per class', int('--per-class'), 40)
  .action(async (uri: string, opts: { perClass: number }) => {
    const root = /^[a-z0-9]+:\/\//.test(uri) ? uri.replace(/\/+$/, '') : pathToFileURL(resolve(uri)).href;
    const storage = new StorageClient({
      endpoint: env.S3_ENDPOINT,
      region: env.AWS_REGION ?? 'us-east-1',
      accessKeyId: env.AWS_ACCESS_KEY_ID,
      secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
    });
    const files = await buildSamples({ perClass: opts.perClass });
    const limit = pLimit(16);
    await Promise.all(files.map((f) => limit(() => storage.write(`${root}/${f.path}`, f.bytes))));
    print(
      `wrote ${files.length} files: model ${root}/color-classifier.onnx, dataset ${root}/colors (split "test"), unlabeled images ${root}/colors/unlabeled;`,
    );
    print(`  detection, instance segmentation, pose and semantic segmentation: ${root}/shapes/{detect,segment,pose,semantic}/{model.onnx,data} (split "val")`);
  });

program
  .command('export')
  .description("download a job's results: COCO results JSON (objects), CSV or JSON")
  .argument('<kind>', 'test-run or inference-job')
  .argument('<id>', 'the job id')
  .option('--format <format>', 'coco | csv | json', 'json')
  .option('-o, --output <file>', 'where to write it (default: standard output)')
  .option('--api <url>', 'the REST API', env.KINFER_API_URL ?? `http://127.0.0.1:${ports.apiPort}/api/v1`)
  .action(async (kind: string, id: string, opts: { format: string; output?: string; api: string }) => {
    const segment = { 'test-run': 'test-runs', 'inference-job': 'inference-jobs' }[kind];
    if (!segment) throw new InvalidArgumentError(`kind must be test-run or inference-job, not "${kind}"`);
    const bytes = await new ApiClient(opts.api, localToken(env, home)).download(
      `/${segment}/${encodeURIComponent(id)}/export?format=${encodeURIComponent(opts.format)}`,
      opts.output,
    );
    if (opts.output) process.stderr.write(`wrote ${bytes} bytes to ${opts.output}\n`);
  });

const apiOption = ['--api <url>', 'the REST API', env.KINFER_API_URL ?? `http://127.0.0.1:${ports.apiPort}/api/v1`] as const;
const tokens = program.command('token').description('kinfer API tokens (KINFER_TOKEN or $KINFER_HOME/admin-token authenticates these calls)');
tokens
  .command('create')
  .description('create a token; its secret is printed once')
  .requiredOption('--name <name>', 'what it is for')
  .option('--role <role>', 'viewer | user | admin (at most your own)', 'user')
  .option('--owner <user>', 'admins: the user it acts as (default: you)')
  .option('--expires-in-days <n>', 'lifetime in days', int('--expires-in-days'), 90)
  .option(...apiOption)
  .action(async (opts: { name: string; role: string; owner?: string; expiresInDays: number; api: string }) => {
    const body = { name: opts.name, role: opts.role, expires_in_days: opts.expiresInDays, ...(opts.owner ? { owner: opts.owner } : {}) };
    const created = await new ApiClient(opts.api, localToken(env, home)).call<{ id: string; token: string; owner: string; role: string; expires_at: string }>(
      'POST',
      '/tokens',
      body,
    );
    print(`token ${created.id} for ${created.owner} (${created.role}), expires ${created.expires_at}:`);
    print(created.token);
    process.stderr.write('kinfer: the secret is shown only now; keep it (export KINFER_TOKEN=...)\n');
  });
tokens
  .command('list')
  .description("your tokens (an admin: everyone's)")
  .option(...apiOption)
  .action(async (opts: { api: string }) => {
    const { items } = await new ApiClient(opts.api, localToken(env, home)).call<{
      items: Array<{ id: string; name: string; owner: string; role: string; status: string; expires_at: string | null }>;
    }>('GET', '/tokens');
    print('ID                                    OWNER            ROLE    STATUS   EXPIRES                   NAME');
    for (const t of items)
      print(`${t.id}  ${t.owner.padEnd(15)}  ${t.role.padEnd(6)}  ${t.status.padEnd(7)}  ${String(t.expires_at ?? '-').padEnd(24)}  ${t.name}`);
  });
tokens
  .command('revoke')
  .description('revoke a token by its id')
  .argument('<id>', 'the token id (kinfer token list)')
  .option(...apiOption)
  .action(async (id: string, opts: { api: string }) => {
    const t = await new ApiClient(opts.api, localToken(env, home)).call<{ id: string; status: string }>('POST', `/tokens/${encodeURIComponent(id)}/revoke`);
    print(`token ${t.id} ${t.status}`);
  });

addJobCommands(program, { apiUrl: apiOption[2], token: () => localToken(env, home), print });

const cluster = program
  .command('cluster')
  .description('a real local Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager) with a node agent');
const clusterDir = () => join(resolve(home), 'cluster');
cluster
  .command('up')
  .description('start it in the background (binaries built from Go modules on first use) and install the CRD')
  .option('--fake-gpus <n>', 'nvidia.com/gpu the node advertises (a FAKE: nothing uses a GPU)', (v) => Number(v), 0)
  .action(async (opts: { fakeGpus: number }) => {
    const { clusterUp, ClusterUpInterrupted } = await import('../local/cluster/local-cluster.ts');
    // Ctrl-C while it starts: what has started (in the background) is stopped, then exit 130.
    const interrupt = new AbortController();
    const releaseSignals = onStopSignals(
      (signal) => {
        process.stderr.write('kinfer: stopping what has started\n');
        interrupt.abort(signal);
      },
      ['SIGINT', 'SIGTERM'],
    );
    let state: Awaited<ReturnType<typeof clusterUp>>;
    try {
      state = await clusterUp({
        dir: clusterDir(),
        apiserverPort: Number(env.KINFER_CLUSTER_API_PORT ?? 16443),
        etcdPort: Number(env.KINFER_CLUSTER_ETCD_PORT ?? 12379),
        fakeGpus: opts.fakeGpus,
        signal: interrupt.signal,
      });
    } catch (err) {
      if (err instanceof ClusterUpInterrupted) throw new CliError(err.message, exitCodeOf(interrupt.signal.reason as NodeJS.Signals));
      throw err;
    } finally {
      releaseSignals();
    }
    print(`local cluster up at ${state.server}
  export KUBECONFIG=${state.kubeconfig}
  kubectl get inferencejobs`);
  });
cluster
  .command('down')
  .description('stop the local cluster started by "cluster up" (its data stays in KINFER_HOME/cluster)')
  .action(async () => {
    const { clusterDown } = await import('../local/cluster/local-cluster.ts');
    print((await clusterDown(clusterDir())) ? 'local cluster stopped' : 'no local cluster is running');
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  process.stderr.write(`kinfer: error: ${err instanceof Error ? err.message : String(err)}\n`);
  // An InvalidArgumentError thrown by an action (export's <kind>) is a usage error too.
  process.exit(err instanceof CliError ? err.exitCode : err instanceof CommanderError ? USAGE_ERROR : 1);
}
