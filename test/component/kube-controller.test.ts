// The Kubernetes controller in-process against the real local control plane (etcd,
// kube-apiserver, kube-controller-manager; no node agent, so runner Pods stay Pending), with the
// real Postgres and S3 server: both doors refuse the same requests with the same messages, an
// admitted InferenceJob gets its run, Secret and Job, status is written only when it changes, the
// cleanup finalizer is patched only onto an InferenceJob not created with it (the REST door's and
// the chart's MutatingAdmissionPolicy's are), and leader election hands over between two electors.
import * as k8s from '@kubernetes/client-node';
import { createControllerApp } from '../../src/controller/api/app.ts';
import { specFieldOf } from '../../src/controller/job-mapping.ts';
import { inferenceJobAdmissionCheck } from '../../src/controller/kubernetes/inference-job-admission.ts';
import { KubeController } from '../../src/controller/kubernetes/kube-controller.ts';
import { TokenIssuer } from '../../src/controller/token-issuer.ts';
import { kubeClients } from '../../src/kube/client.ts';
import { FINALIZER } from '../../src/kube/inference-job.ts';
import { LeaderElector } from '../../src/kube/leader-election.ts';
import { renderChartFor } from '../../src/local/cluster/local-cluster.ts';
import { ensureSigningKeys } from '../../src/cli/keys.ts';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { eventually, startTestCluster, type TestCluster } from '../support/local-cluster.ts';
import {
  FakeTier,
  quietLog,
  serve,
  testAccess,
  testAdmission,
  testDatabase,
  testPrefix,
  testStorage,
  type Served,
  type TestDatabase,
} from '../support/in-process.ts';
import { ModelStore } from '../../src/db/model-store.ts';
import { invalidJobCases, type InvalidCase } from '../support/invalid-jobs.ts';
import { wrapMethod } from '../support/wrap-method.ts';

let cluster: TestCluster;
let db: TestDatabase;
let controller: KubeController;
let rest: Served;
let cases: InvalidCase[];
let prefix: string;
let statusWrites = 0;
/** The InferenceJobs whose finalizers the controller patched, by name, once a patch. */
const finalizerPatches: string[] = [];

beforeAll(async () => {
  cluster = await startTestCluster({ nodeAgent: false });
  db = await testDatabase();
  const storage = testStorage();
  prefix = testPrefix();
  const registry = new ModelStore(db.ds);
  cases = await invalidJobCases(storage, prefix, registry);
  const admission = testAdmission(storage, 10_000, registry);
  const keys = await ensureSigningKeys(join(cluster.dir, 'keys'));
  const clients = kubeClients(cluster.cp.kubeconfig);
  // Counts status writes, to show that an unchanged status is not written again, and finalizer
  // patches, to show which InferenceJobs needed one.
  const statusCounted = wrapMethod(
    clients.custom,
    'patchNamespacedCustomObjectStatus',
    (patchStatus) =>
      ((...args: Parameters<typeof patchStatus>) => {
        statusWrites++;
        return patchStatus(...args);
      }) as typeof patchStatus,
  );
  clients.custom = wrapMethod(
    statusCounted,
    'patchNamespacedCustomObject',
    (patch) =>
      ((...args: Parameters<typeof patch>) => {
        const [request] = args;
        if ((request.body as { metadata?: { finalizers?: unknown } }).metadata?.finalizers) finalizerPatches.push(request.name);
        return patch(...args);
      }) as typeof patch,
  );
  controller = new KubeController({
    clients,
    store: db.store,
    admission,
    tokens: new TokenIssuer(readFileSync(keys.privateKeyFile, 'utf8'), 3600),
    runner: { callbackUrl: 'http://127.0.0.1:9', artifactsUri: `${prefix}/artifacts`, awsRegion: 'us-east-1' },
    pod: { image: 'ghcr.io/kinfer/kinfer:test', args: ['runner'], defaultTtlSecondsAfterFinished: 60, defaults: { gpu: { resourceName: 'nvidia.com/gpu' } } },
    podStartTimeoutMs: 600_000,
    runnerStallMs: 900_000,
    finalizerGiveUpMs: 60_000,
    resyncMs: 2_000,
    watchSilenceMs: 600_000,
    identity: 'in-process',
    log: quietLog(),
  });
  await controller.start();
  const access = await testAccess(db.ds);
  rest = await serve(
    createControllerApp({ store: db.store, admission, log: quietLog(), ready: async () => undefined, tier: new FakeTier(), ...access }),
    access.bearer,
  );
}, 180_000);

afterAll(async () => {
  await rest?.close();
  await controller?.stop();
  await db?.stop();
  await cluster?.stop();
});

const apply = (name: string, spec: Record<string, unknown>) =>
  cluster.kubectl(['apply', '-n', 'default', '-f', '-'], JSON.stringify({ apiVersion: 'kinfer.io/v1alpha1', kind: 'InferenceJob', metadata: { name }, spec }));
/** The spec of a test run of the colour classifier on its dataset, as kubectl applies it. */
const colorsTestRun = () => ({
  type: 'test_run',
  taskType: 'image_classification',
  checkpointPath: `${prefix}/models/colors.onnx`,
  dataset: { path: `${prefix}/data/colors` },
});
const getIj = async (name: string) => JSON.parse((await cluster.kubectl(['get', 'ij', '-n', 'default', name, '-o', 'json'])).stdout);
const admittedCondition = (name: string) =>
  eventually(`${name} admission`, async () => (await getIj(name)).status?.conditions?.find((c: { type: string }) => c.type === 'Admitted'), 60_000);

describe('both doors refuse the same requests with the same messages', () => {
  it('every invalid request of the table: 400 at the REST door, Admitted=False (or the API server) at the kubectl door', async () => {
    for (const [i, c] of cases.entries()) {
      const name = `invalid-${i}`;
      const restReply = await rest.call('POST', `/api/v1${c.rest.path}`, c.rest.body);
      expect([c.name, restReply.status]).toEqual([c.name, 400]);
      const applied = await apply(name, c.spec);
      if (c.crdRefuses) {
        // What the CRD can check itself, the API server refuses before the controller sees it.
        expect([c.name, applied.code]).toEqual([c.name, 1]);
        expect(applied.stderr).toMatch(c.crdRefuses);
        continue;
      }
      expect([c.name, applied.stderr]).toEqual([c.name, '']);
      const admitted = await admittedCondition(name);
      // The REST door's problems, each field spelled as the kubectl door spells it.
      const message = restReply.body.fields.map((f: { field: string; message: string }) => `${specFieldOf(f.field)}: ${f.message}`).join('; ');
      expect([c.name, admitted]).toEqual([c.name, expect.objectContaining({ status: 'False', reason: 'Invalid', message })]);
      const obj = await getIj(name);
      expect(obj.status.phase).toBe('Failed');
      const events = JSON.parse(
        (await cluster.kubectl(['get', 'events', '-n', 'default', '--field-selector', `involvedObject.name=${name}`, '-o', 'json'])).stdout,
      ).items;
      expect(events.map((e: { reason: string; message: string; type: string }) => [e.type, e.reason, e.message])).toEqual([['Warning', 'Invalid', message]]);
      // No run, no Job.
      expect(await db.store.get('test_run', obj.metadata.uid)).toBeNull();
      expect((await cluster.batch.listNamespacedJob({ namespace: 'default', labelSelector: `kinfer.io/job-id=${obj.metadata.uid}` })).items).toEqual([]);
    }
  });
});

describe('an admitted InferenceJob', () => {
  it('gets its run, Secret and Job, and a status that is written only when something changes', async () => {
    expect((await apply('valid', colorsTestRun())).stderr).toBe('');
    const obj = await eventually('JobCreated', async () => {
      const o = await getIj('valid');
      return o.status?.jobName ? o : undefined;
    });
    expect(obj.status.conditions.map((c: { type: string; status: string }) => `${c.type}=${c.status}`)).toEqual(['Admitted=True', 'JobCreated=True']);
    expect(await db.store.get('test_run', obj.metadata.uid)).toMatchObject({
      status: 'pending',
      name: 'valid',
      executor: 'kubernetes',
      executor_ref: 'default/valid',
    });
    const jobs = (await cluster.batch.listNamespacedJob({ namespace: 'default', labelSelector: `kinfer.io/job-id=${obj.metadata.uid}` })).items;
    expect(jobs.map((j) => j.metadata!.name)).toEqual([`kinfer-${obj.metadata.uid}`]);
    const env = Object.fromEntries(jobs[0]!.spec!.template.spec!.containers[0]!.env!.map((e) => [e.name, e.value ?? e.valueFrom?.secretKeyRef?.name]));
    expect(env).toMatchObject({
      JOB_ID: obj.metadata.uid,
      DATASET_PATH: `${prefix}/data/colors`,
      SPLIT: 'test',
      CALLBACK_TOKEN: `kinfer-${obj.metadata.uid}-runner`,
    });
    // Applied without it, it got the cleanup finalizer in one patch.
    expect(obj.metadata.finalizers).toEqual(['kinfer.io/cleanup']);
    expect(finalizerPatches.filter((n) => n === 'valid')).toEqual(['valid']);

    // Several resyncs later, nothing changed: no further status write.
    const writes = statusWrites;
    await new Promise((r) => setTimeout(r, 5_000));
    expect(statusWrites).toBe(writes);

    // A change in the database (the runner reports) is mirrored.
    await db.store.applyProgress('test_run', obj.metadata.uid, { processed_images: 3, total_images: 19, failed_images: 0 });
    const running = await eventually('Running', async () => {
      const o = await getIj('valid');
      return o.status?.phase === 'Running' ? o : undefined;
    });
    expect(running.status).toMatchObject({ progress: '3/19' });
  });

  it('spec.model names a registered model: the run keeps its name and version, the Job runs its checkpoint', async () => {
    // colors@1.0.0 is the production version (registered by the table's setup).
    expect(
      (await apply('by-name', { type: 'test_run', taskType: 'image_classification', model: 'colors', dataset: { path: `${prefix}/data/colors` } })).stderr,
    ).toBe('');
    const obj = await eventually('JobCreated', async () => {
      const o = await getIj('by-name');
      return o.status?.jobName ? o : undefined;
    });
    expect(await db.store.get('test_run', obj.metadata.uid)).toMatchObject({
      model_name: 'colors',
      model_version: '1.0.0',
      checkpoint_path: `${prefix}/models/colors.onnx`,
    });
    const [job] = (await cluster.batch.listNamespacedJob({ namespace: 'default', labelSelector: `kinfer.io/job-id=${obj.metadata.uid}` })).items;
    const env = Object.fromEntries(job!.spec!.template.spec!.containers[0]!.env!.map((e) => [e.name, e.value]));
    expect(env.CHECKPOINT_PATH).toBe(`${prefix}/models/colors.onnx`);
  });

  it("records who applied it: the chart's admission policy lets only that user write kinfer.io/created-by", async () => {
    const policy = renderChartFor(cluster.cp.kubeconfig, ['templates/admission-policy.yaml']);
    expect((await cluster.kubectl(['apply', '-f', '-'], policy)).code).toBe(0);
    expect((await cluster.kubectl(['create', 'rolebinding', 'alice-edit', '--clusterrole=cluster-admin', '--user=alice', '-n', 'default'])).code).toBe(0);
    const manifest = (name: string, createdBy: string) =>
      JSON.stringify({
        apiVersion: 'kinfer.io/v1alpha1',
        kind: 'InferenceJob',
        metadata: { name, annotations: { 'kinfer.io/created-by': createdBy } },
        spec: colorsTestRun(),
      });
    // The policy takes a moment to be enforced after it is created: retry until alice is refused.
    const forged = await eventually(
      'the policy refusing a forged creator',
      async () => {
        const r = await cluster.kubectl(['apply', '--as=alice', '-n', 'default', '-f', '-'], manifest('forged', 'bob'));
        if (r.code === 0) await cluster.kubectl(['delete', 'ij', 'forged', '-n', 'default', '--wait=false']);
        return r.code !== 0 ? r : undefined;
      },
      30_000,
    );
    expect(forged.stderr).toMatch(/kinfer\.io\/created-by must be your own user name \(alice\), not bob/);
    expect((await cluster.kubectl(['apply', '--as=alice', '-n', 'default', '-f', '-'], manifest('by-alice', 'alice'))).stderr).toBe('');
    const obj = await eventually('JobCreated', async () => {
      const o = await getIj('by-alice');
      return o.status?.jobName ? o : undefined;
    });
    expect(await db.store.get('test_run', obj.metadata.uid)).toMatchObject({ created_by: 'alice', namespace: 'default' });
  }, 120_000);

  it('a REST-submitted job is mirrored by an InferenceJob named after its whole id', async () => {
    const clients = kubeClients(cluster.cp.kubeconfig);
    const created = await rest.call('POST', '/api/v1/test-runs', {
      checkpoint_path: `${prefix}/models/colors.onnx`,
      dataset_path: `${prefix}/data/colors`,
      task_type: 'image_classification',
    });
    expect(created.status).toBe(201);
    // The FAKE tier does not create it: create it as the Kubernetes tier does, then let the controller run it.
    const { inferenceJobFor } = await import('../../src/controller/kubernetes/kubernetes-tier.ts');
    const body = inferenceJobFor('test_run', (await db.store.get('test_run', created.body.id))!, 'default');
    const name = body.metadata.name;
    expect(name).toBe(`test-run-${created.body.id}`);
    await clients.custom.createNamespacedCustomObject({ group: 'kinfer.io', version: 'v1alpha1', plural: 'inferencejobs', namespace: 'default', body });
    const obj = await eventually('JobCreated', async () => {
      const o = await getIj(name);
      return o.status?.jobName ? o : undefined;
    });
    expect(obj.status.jobId).toBe(created.body.id);
    // Created with its finalizer: no finalizer patch (the kubectl door's needs one, above).
    expect(obj.metadata.finalizers).toEqual(['kinfer.io/cleanup']);
    expect(finalizerPatches.filter((n) => n === name)).toEqual([]);
  });

  it("is created with its finalizer where the chart's MutatingAdmissionPolicy runs: no finalizer patch", async () => {
    // Rendered for this API server, as helm install renders it (it serves the v1beta1 API).
    const policy = renderChartFor(cluster.cp.kubeconfig, ['templates/finalizer-policy.yaml']);
    expect(policy).toContain('kind: MutatingAdmissionPolicy\n');
    expect((await cluster.kubectl(['apply', '-f', '-'], policy)).code).toBe(0);
    const manifest = (name: string, finalizers?: string[]) =>
      JSON.stringify({
        apiVersion: 'kinfer.io/v1alpha1',
        kind: 'InferenceJob',
        metadata: { name, ...(finalizers ? { finalizers } : {}) },
        spec: colorsTestRun(),
      });
    const dryRun = async (name: string, finalizers?: string[]) =>
      JSON.parse((await cluster.kubectl(['apply', '--dry-run=server', '-o', 'json', '-n', 'default', '-f', '-'], manifest(name, finalizers))).stdout).metadata
        .finalizers;
    // The API server takes a new policy up asynchronously.
    await eventually('the policy in force', async () => ((await dryRun('probe'))?.includes(FINALIZER) ? true : undefined));
    // Another's finalizer is kept and ours added; ours already there is not added twice.
    expect(await dryRun('theirs', ['example.com/keep'])).toEqual(['example.com/keep', FINALIZER]);
    expect(await dryRun('ours', [FINALIZER])).toEqual([FINALIZER]);

    const applied = await cluster.kubectl(['apply', '-o', 'json', '-n', 'default', '-f', '-'], manifest('mutated'));
    expect(JSON.parse(applied.stdout).metadata.finalizers).toEqual([FINALIZER]);
    await eventually('JobCreated', async () => ((await getIj('mutated')).status?.jobName ? true : undefined));
    expect(finalizerPatches.filter((n) => n === 'mutated')).toEqual([]);
    await cluster.kubectl(['delete', '-f', '-'], policy);
  });
});

describe('leader election', () => {
  it('one of two electors leads; when it steps down the other takes over', async () => {
    const coordination = cluster.kc.makeApiClient(k8s.CoordinationV1Api);
    const leading: string[] = [];
    const elector = (identity: string) =>
      new LeaderElector({
        coordination,
        namespace: 'default',
        name: 'in-process-election',
        identity,
        leaseDurationSeconds: 3,
        renewDeadlineSeconds: 2,
        retryPeriodSeconds: 1,
        onStartedLeading: () => void leading.push(identity),
        onStoppedLeading: () => undefined,
        log: () => undefined,
      });
    const a = elector('a');
    const b = elector('b');
    a.start();
    await eventually('a leader', async () => (leading.length > 0 ? true : undefined));
    b.start();
    await new Promise((r) => setTimeout(r, 3_000));
    expect(leading).toHaveLength(1);
    const [first] = leading;
    const [leader, standby] = first === 'a' ? [a, b] : [b, a];
    expect([leader.isLeader, standby.isLeader]).toEqual([true, false]);
    await leader.stop();
    await eventually('the standby leads', async () => (standby.isLeader ? true : undefined), 15_000);
    expect(leading).toEqual([first, first === 'a' ? 'b' : 'a']);
    await standby.stop();
  });

  it('an elector stopped while its renewal is in flight does not lead again, and gives the lease up', async () => {
    const real = cluster.kc.makeApiClient(k8s.CoordinationV1Api);
    // The real API server, with the renewal's patch held back until the test lets it go.
    let release: () => void = () => undefined;
    let held: Promise<void> | undefined;
    let patchesStarted = 0;
    const coordination = wrapMethod(
      real,
      'patchNamespacedLease',
      (patch) =>
        (async (...args: Parameters<typeof patch>) => {
          patchesStarted++;
          if (held) await held;
          return patch(...args);
        }) as typeof patch,
    );
    const leading: string[] = [];
    const a = new LeaderElector({
      coordination,
      namespace: 'default',
      name: 'stop-during-renewal',
      identity: 'a',
      leaseDurationSeconds: 30,
      renewDeadlineSeconds: 20,
      retryPeriodSeconds: 1,
      onStartedLeading: () => void leading.push('a'),
      onStoppedLeading: () => undefined,
      log: () => undefined,
    });
    a.start();
    await eventually('a leads', async () => (a.isLeader ? true : undefined));
    held = new Promise((r) => (release = r));
    const before = patchesStarted;
    await eventually('a renewal in flight', async () => (patchesStarted > before ? true : undefined));
    const stopping = a.stop();
    held = undefined;
    release();
    await stopping;
    expect(a.isLeader).toBe(false);
    expect(leading).toEqual(['a']);
    const lease = await real.readNamespacedLease({ name: 'stop-during-renewal', namespace: 'default' });
    expect(lease.spec?.holderIdentity ?? null).toBeNull();
  });
});

describe('the Kubernetes client', () => {
  /** The dispatcher (undici Agent) a request of this client would go through. */
  async function dispatcherOf(kc: k8s.KubeConfig) {
    const ctx = new k8s.RequestContext(kc.getCurrentCluster()!.server, k8s.HttpMethod.GET);
    await kc.applySecurityAuthentication(ctx);
    return ctx.getDispatcher()!;
  }

  it('sends its requests over one kept-alive connection, not a TLS handshake each', async () => {
    const { kc, core } = kubeClients(cluster.cp.kubeconfig);
    try {
      const agent = await dispatcherOf(kc);
      expect(await dispatcherOf(kc)).toBe(agent);
      let connections = 0;
      agent.on('connect', () => connections++);
      for (let i = 0; i < 100; i++) await core.listNamespace();
      // A second connection opens when the next request is sent before undici has marked the
      // first one free again (client-node resolves as the body ends); after that, no more.
      expect(connections).toBeGreaterThanOrEqual(1);
      expect(connections).toBeLessThanOrEqual(2);
    } finally {
      await kc.close();
    }
  });

  it('keeps to its QPS once its burst is spent', async () => {
    const { kc, core } = kubeClients(cluster.cp.kubeconfig, { qps: 20, burst: 2 });
    try {
      const started = performance.now();
      for (let i = 0; i < 12; i++) await core.listNamespace();
      // 10 requests past the burst at 20/s: half a second at least (timers never fire early).
      expect(performance.now() - started).toBeGreaterThanOrEqual(490);
    } finally {
      await kc.close();
    }
  });
});

describe("the controller's readiness", () => {
  it('waits until the API server admits an InferenceJob, with its reason until then; once admitted it does not ask again', async () => {
    const { kc, custom } = kubeClients(cluster.cp.kubeconfig);
    let creates = 0;
    const counted = wrapMethod(
      custom,
      'createNamespacedCustomObject',
      (create) =>
        ((...args: Parameters<typeof create>) => {
          creates++;
          return create(...args);
        }) as typeof create,
    );
    const ns = `readiness-${Date.now()}`;
    try {
      const ready = inferenceJobAdmissionCheck(counted, ns);
      // A refusal the API server gives (here: no such namespace) is the readiness failure's reason.
      await expect(ready()).rejects.toThrow(`the API server does not admit an InferenceJob in ${ns} yet (HTTP 404): namespaces "${ns}" not found`);
      expect(await cluster.kubectl(['create', 'namespace', ns])).toMatchObject({ code: 0 });
      // Two probes at once share one request; admitted, later probes send none.
      const before = creates;
      await Promise.all([ready(), ready()]);
      await ready();
      expect(creates - before).toBe(1);
      // A dry run: nothing was created.
      expect(JSON.parse((await cluster.kubectl(['get', 'ij', '-n', ns, '-o', 'json'])).stdout).items).toEqual([]);
    } finally {
      await cluster.kubectl(['delete', 'namespace', ns, '--wait=false']);
      await kc.close();
    }
  });
});
