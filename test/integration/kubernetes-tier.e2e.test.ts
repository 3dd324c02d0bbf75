// The Kubernetes tier end to end on a real control plane: kubectl apply -> InferenceJob ->
// controller -> Job -> Pod (node agent) -> runner -> callbacks -> Postgres -> status, and the
// REST door into the same system. Controller and callback service run as real processes.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { buildColorClassifier } from '../../src/samples/color-classifier.ts';
import { buildColorDataset } from '../../src/samples/color-dataset.ts';
import { eventually, startTestCluster, type TestCluster } from '../support/local-cluster.ts';
import { alive, pidsWithEnv, shardPartWay } from '../support/processes.ts';
import { freePort } from '../support/ports.ts';
import { outcome, startTestStack, upload, type TestStack } from '../support/test-stack.ts';

let cluster: TestCluster;
let stack: TestStack;
let checkpoint: string;
let smallDataset: string;
let bigDataset: string;

beforeAll(async () => {
  cluster = await startTestCluster();
  stack = await startTestStack({
    KINFER_EXECUTOR: 'kubernetes',
    KUBECONFIG: cluster.cp.kubeconfig,
    KINFER_NAMESPACE: 'default',
    KINFER_RUNNER_IMAGE: 'ghcr.io/kinfer/kinfer:test',
    KINFER_POD_START_TIMEOUT_SECONDS: '3',
    KINFER_LEASE_DURATION_SECONDS: '4',
    KINFER_RUNNER_BATCH_SIZE: '4',
    KINFER_RUNNER_STALL_SECONDS: '15',
    KINFER_RUNNER_HEARTBEAT_SECONDS: '1',
  });
  checkpoint = `${stack.s3Prefix}/models/colors.onnx`;
  await stack.store.write(checkpoint, Buffer.from(buildColorClassifier().model));
  smallDataset = `${stack.s3Prefix}/datasets/small`;
  await upload(stack.store, smallDataset, await buildColorDataset({ perClass: 3, mislabeled: [['red', 'green']] }));
  bigDataset = `${stack.s3Prefix}/datasets/big`;
  await upload(stack.store, bigDataset, await buildColorDataset({ perClass: 100, seed: 5 }));
}, 600_000);

afterAll(async () => {
  await stack?.stop();
  await cluster?.stop();
});

const ij = (name: string, spec: Record<string, unknown>) => ({ apiVersion: 'kinfer.io/v1alpha1', kind: 'InferenceJob', metadata: { name }, spec });
const testRun = (name: string, dataset: string, extra: Record<string, unknown> = {}) =>
  ij(name, { type: 'test_run', taskType: 'image_classification', checkpointPath: checkpoint, dataset: { path: dataset }, ...extra });
const apply = async (obj: unknown) => {
  const res = await cluster.kubectl(['apply', '-f', '-'], JSON.stringify(obj));
  expect(res.stderr).toBe('');
};
const getIj = async (name: string) => JSON.parse((await cluster.kubectl(['get', 'ij', name, '-o', 'json'])).stdout);
const phase = (name: string, wanted: string[], timeoutMs = 60_000) =>
  eventually(
    `${name} in ${wanted.join('|')}`,
    async () => {
      const obj = await getIj(name);
      return wanted.includes(obj.status?.phase) ? obj : undefined;
    },
    timeoutMs,
  );
const jobsOf = async (jobId: string) => (await cluster.batch.listNamespacedJob({ namespace: 'default', labelSelector: `kinfer.io/job-id=${jobId}` })).items;
const runnerPid = (jobId: string) => eventually('runner process', async () => pidsWithEnv('JOB_ID', jobId)[0]);

describe('kubectl door', () => {
  it('runs a test run: InferenceJob -> Job -> Pod -> runner -> Completed with the metric', async () => {
    await apply(testRun('colors-eval', smallDataset));
    const done = await phase('colors-eval', ['Completed', 'Failed']);
    expect(done.status).toMatchObject({ phase: 'Completed', processedImages: 19, totalImages: 19, progress: '19/19' });
    // 18 of 19 right by construction (one red image filed under green).
    expect(done.status.primaryMetric.name).toBe('accuracy');
    expect(done.status.primaryMetric.value).toBeCloseTo(18 / 19, 12);
    expect(done.status.resultsPath).toBe(`${stack.s3Prefix}/artifacts/test-runs/${done.metadata.uid}/results.json`);
    expect(done.status.conditions.map((c: { type: string }) => c.type)).toEqual(['Admitted', 'JobCreated', 'Running', 'Completed']);
    expect(done.metadata.finalizers).toContain('kinfer.io/cleanup');

    // The same run through the REST API, under the InferenceJob's uid.
    const api = await stack.api('GET', `/test-runs/${done.metadata.uid}`);
    expect(api.body).toMatchObject({ status: 'completed', name: 'colors-eval', primary_metric_value: done.status.primaryMetric.value });

    const table = (await cluster.kubectl(['get', 'ij', 'colors-eval'])).stdout;
    expect(table).toMatch(/colors-eval\s+test_run\s+image_classification\s+Completed\s+19\/19\s+accuracy=0\.947/);
  });

  it('built the Job as specified: owner, labels, secretKeyRef credentials, limits, scheduling, deadlines', async () => {
    await apply(
      testRun('colors-spec', smallDataset, {
        backoffLimit: 1,
        activeDeadlineSeconds: 600,
        ttlSecondsAfterFinished: 120,
        queueName: 'team-a',
        resources: { limits: { cpu: '1', 'nvidia.com/gpu': 1 } },
        nodeSelector: { 'kinfer.io/accelerator': 'fake-nvidia-gpu' },
        tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
      }),
    );
    const obj = await eventually('jobName', async () => (await getIj('colors-spec')).status?.jobName && (await getIj('colors-spec')));
    const [job] = await jobsOf(obj.metadata.uid);
    expect(job!.metadata!.name).toBe(obj.status.jobName);
    expect(job!.metadata!.ownerReferences).toEqual([
      expect.objectContaining({ kind: 'InferenceJob', name: 'colors-spec', uid: obj.metadata.uid, controller: true }),
    ]);
    expect(job!.metadata!.labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'kinfer', 'kueue.x-k8s.io/queue-name': 'team-a' });
    // Queued for Kueue: created suspended, and left for Kueue to admit.
    expect(job!.spec!.suspend).toBe(true);
    expect(job!.spec).toMatchObject({ backoffLimit: 1, activeDeadlineSeconds: 600, ttlSecondsAfterFinished: 120 });
    const pod = job!.spec!.template.spec!;
    expect(pod.restartPolicy).toBe('Never');
    expect(pod.nodeSelector).toEqual({ 'kinfer.io/accelerator': 'fake-nvidia-gpu' });
    const container = pod.containers[0]!;
    expect(container.image).toBe('ghcr.io/kinfer/kinfer:test');
    // The image's entrypoint (tini) stays: only its arguments are set.
    expect(container.command).toBeUndefined();
    expect(container.args).toEqual(['runner']);
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true });
    expect(container.securityContext).toMatchObject({ allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    expect(container.resources!.limits).toMatchObject({ 'nvidia.com/gpu': '1' });
    const env = Object.fromEntries(container.env!.map((e) => [e.name, e]));
    for (const secret of ['CALLBACK_TOKEN', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) {
      expect(env[secret]!.value).toBeUndefined();
      expect(env[secret]!.valueFrom!.secretKeyRef!.name).toBe(`kinfer-${obj.metadata.uid}-runner`);
    }
    expect(env.EXECUTION_PROVIDERS!.value).toBe('cuda,cpu');
    expect(env.JOB_ID!.value).toBe(obj.metadata.uid);
    // Suspended: nothing runs, and the InferenceJob does not claim otherwise.
    expect((await getIj('colors-spec')).status.phase).toBe('Pending');
    await cluster.kubectl(['delete', 'ij', 'colors-spec', '--wait=true']);
  });

  it('runs an inference job applied with kubectl, readable through the REST API', async () => {
    await apply(
      ij('colors-predict', {
        type: 'inference',
        taskType: 'image_classification',
        checkpointPath: checkpoint,
        input: { datasetPath: `${smallDataset}/test/blue` },
      }),
    );
    const done = await phase('colors-predict', ['Completed', 'Failed']);
    expect(done.status.phase).toBe('Completed');
    const results = await stack.api('GET', `/inference-jobs/${done.metadata.uid}/results`);
    expect(results.body.total_count).toBe(3);
    expect(results.body.results.every((r: { predicted_label: string }) => r.predicted_label === 'blue')).toBe(true);
  });
});

describe('REST door', () => {
  it('a test run created through the API appears as an InferenceJob and completes', async () => {
    const created = await stack.api('POST', '/test-runs', { checkpoint_path: checkpoint, dataset_path: smallDataset, task_type: 'image_classification' });
    expect(created.status).toBe(201);
    const name = `test-run-${created.body.id}`;
    const listed = (await cluster.kubectl(['get', 'ij', '-o', 'name'])).stdout;
    expect(listed).toContain(`inferencejob.kinfer.io/${name}`);
    const done = await phase(name, ['Completed', 'Failed']);
    expect(done.status).toMatchObject({ phase: 'Completed', jobId: created.body.id });
    expect(outcome((await stack.api('GET', `/test-runs/${created.body.id}`)).body)).toEqual({ status: 'completed', error_message: null });
  });

  it('an inference job created through the API appears as an InferenceJob and completes', async () => {
    const created = await stack.api('POST', '/inference-jobs', {
      checkpoint_path: checkpoint,
      task_type: 'image_classification',
      inference_type: 'dataset',
      input_config: { dataset_path: `${smallDataset}/test/green` },
    });
    expect(created.status).toBe(201);
    const name = `inference-${created.body.id}`;
    expect((await getIj(name)).spec).toMatchObject({ type: 'inference', input: { datasetPath: `${smallDataset}/test/green` } });
    const done = await phase(name, ['Completed', 'Failed']);
    expect(done.status).toMatchObject({ phase: 'Completed', jobId: created.body.id, totalImages: 4 });
  });

  it('cancelling through the API deletes the Job and shows Cancelled', async () => {
    const created = await stack.api('POST', '/test-runs', { checkpoint_path: checkpoint, dataset_path: bigDataset, task_type: 'image_classification' });
    const name = `test-run-${created.body.id}`;
    await phase(name, ['Running']);
    const pid = await runnerPid(created.body.id);
    expect((await stack.api('POST', `/test-runs/${created.body.id}/cancel`)).status).toBe(200);
    const cancelled = await phase(name, ['Cancelled']);
    expect(cancelled.status.conditions.at(-1)).toMatchObject({ type: 'Cancelled' });
    await eventually('Job deleted', async () => ((await jobsOf(created.body.id)).length === 0 ? true : undefined));
    await eventually('runner stopped', async () => (alive(pid) ? undefined : true));
  });
});

describe('failures are reported, never hidden', () => {
  it('a runner that dies exhausts the Job backoff: Failed with the reason and exit code', async () => {
    await apply(testRun('crashing', bigDataset));
    const running = await phase('crashing', ['Running']);
    process.kill(await runnerPid(running.metadata.uid), 'SIGKILL');
    const failed = await phase('crashing', ['Failed']);
    expect(failed.status.message).toMatch(/BackoffLimitExceeded.*exit code 137/);
    // The run's error code is the Failed condition's reason.
    expect(failed.status.conditions.find((c: { type: string }) => c.type === 'Failed').reason).toBe('BackoffLimitExceeded');
    expect((await stack.api('GET', `/test-runs/${running.metadata.uid}`)).body).toMatchObject({ status: 'failed' });
    const events = (await cluster.kubectl(['get', 'events', '--field-selector', 'involvedObject.name=crashing', '-o', 'json'])).stdout;
    expect(JSON.parse(events).items.map((e: { reason: string }) => e.reason)).toEqual(expect.arrayContaining(['JobCreated', 'Running', 'Failed']));
  });

  it('a Job past its activeDeadlineSeconds fails the run, not cancels it', async () => {
    await apply(testRun('too-slow', bigDataset, { activeDeadlineSeconds: 1 }));
    const failed = await phase('too-slow', ['Failed', 'Cancelled', 'Completed']);
    expect(failed.status.phase).toBe('Failed');
    expect(failed.status.message).toMatch(/DeadlineExceeded|received SIGTERM before finishing/);
    expect(failed.status.conditions.find((c: { type: string }) => c.type === 'Failed').reason).toMatch(/^(DeadlineExceeded|Terminated)$/);
    const jobFailed = await eventually('JobFailed condition', async () =>
      (await getIj('too-slow')).status.conditions.find((c: { type: string }) => c.type === 'JobFailed'),
    );
    expect(jobFailed.reason).toBe('DeadlineExceeded');
  });

  it('a Pod that can never start fails the job after the timeout, and it never shows Running', async () => {
    await apply(testRun('unpullable', smallDataset, { image: 'registry.invalid/kinfer:none' }));
    const seen = new Set<string>();
    const failed = await eventually('Failed', async () => {
      const obj = await getIj('unpullable');
      if (obj.status?.phase) seen.add(obj.status.phase);
      return obj.status?.phase === 'Failed' ? obj : undefined;
    });
    expect([...seen]).not.toContain('Running');
    expect(failed.status.message).toMatch(/runner Pod did not start within 3s: ErrImagePull/);
    expect(failed.status.conditions.find((c: { type: string }) => c.type === 'Failed').reason).toBe('PodNotStarting');
    await eventually('Job deleted', async () => ((await jobsOf(failed.metadata.uid)).length === 0 ? true : undefined));
  });
});

describe('sharded test runs', () => {
  it('parallelism 8: one Indexed Job; a shard Pod killed mid-run is retried and resumes; rows exactly the dataset, metrics identical to one shard', async () => {
    // 112 or 113 images a shard: long enough to catch one part-way through (progress comes every 50).
    const dataset = `${stack.s3Prefix}/datasets/sharded`;
    await upload(stack.store, dataset, await buildColorDataset({ perClass: 150, seed: 9 }));
    const reference = await stack.api('POST', '/test-runs', { checkpoint_path: checkpoint, dataset_path: dataset, task_type: 'image_classification' });
    expect(reference.status).toBe(201);
    const one = await stack.waitFor('test-runs', reference.body.id, undefined, 180_000);
    expect(outcome(one)).toEqual({ status: 'completed', error_message: null });

    await apply(testRun('sharded', dataset, { parallelism: 8, backoffLimit: 2 }));
    const id = (await eventually('the InferenceJob', async () => (await getIj('sharded')).metadata?.uid as string | undefined)) as string;
    const job = await eventually('its Job', async () => (await jobsOf(id))[0]);
    expect(job.spec).toMatchObject({ completionMode: 'Indexed', completions: 8, parallelism: 8, backoffLimit: 2 });
    // A shard part-way through. A shard of 112 tiny images can go from its first progress report
    // to its last image between two polls of runners that run freely (seen in CI: every shard
    // finished unseen), so the job's runners run in slow motion (30 ms at a time, then stopped)
    // and the shards are read while all of them are stopped: none finishes between the reading
    // and the kill.
    let seen = '';
    const { found: victim, resume } = await shardPartWay(stack.db, id, 'JOB_COMPLETION_INDEX', { timeoutMs: 180_000, seen: (s) => (seen = s) }).catch(
      async (err: Error) => {
        const status = (await getIj('sharded')).status;
        throw new Error(`${err.message}; last seen: phase ${status?.phase} (${status?.message ?? ''}), ${seen}`);
      },
    );
    resume([victim.pid]);
    const before = await stack.db.query('SELECT finished_at FROM job_shards WHERE job_id = $1 AND shard = $2', [id, victim.shard]);
    expect(before.rows[0].finished_at).toBeNull();
    process.kill(victim.pid, 'SIGKILL');

    const done = await phase('sharded', ['Completed', 'Failed'], 240_000);
    expect(done.status).toMatchObject({ phase: 'Completed', processedImages: 900, totalImages: 900 });
    const run = (await stack.api('GET', `/test-runs/${id}`)).body;
    for (const key of ['overall_metrics', 'per_class_metrics', 'confusion_matrix', 'primary_metric_value', 'processed_images', 'failed_images', 'total_images'])
      expect({ key, value: run[key] }).toEqual({ key, value: one[key] });
    const rows = async (runId: string) =>
      (
        await stack.db.query('SELECT image_index, image_path, predicted_class_id FROM test_image_results WHERE test_run_id = $1 ORDER BY image_index, id', [
          runId,
        ])
      ).rows;
    expect(await rows(id)).toEqual(await rows(one.id));
    // The Job controller ran the killed index again: nine Pods for eight shards.
    const pods = await cluster.core.listNamespacedPod({ namespace: 'default', labelSelector: `kinfer.io/job-id=${id}` });
    expect(pods.items).toHaveLength(9);
    expect(pods.items.filter((p) => p.metadata?.annotations?.['batch.kubernetes.io/job-completion-index'] === String(victim.shard))).toHaveLength(2);
  }, 600_000);
});

describe('faults in the cluster', () => {
  it('a runner that stops reporting (SIGSTOP) fails its run RunnerStalled, and its Job is deleted', async () => {
    await apply(testRun('frozen', bigDataset));
    const running = await phase('frozen', ['Running']);
    const pid = await runnerPid(running.metadata.uid);
    process.kill(pid, 'SIGSTOP');
    const failed = await phase('frozen', ['Failed'], 90_000);
    expect(failed.status.message).toBe('no progress for 15 s: the runner stopped reporting (no progress or heartbeat) and was stopped');
    expect(failed.status.conditions.find((c: { type: string }) => c.type === 'Failed').reason).toBe('RunnerStalled');
    await eventually('Job deleted', async () => ((await jobsOf(running.metadata.uid)).length === 0 ? true : undefined));
    // A frozen process leaves SIGTERM pending: it goes at SIGKILL, the Pod's grace period (30 s)
    // after the garbage collector deletes the Pod, which is itself a moment after the Job. On a
    // loaded 2-core machine that moment took over 30 s once (CI of 2026-12-03): 120 s in all.
    await eventually('runner stopped', async () => (alive(pid) ? undefined : true), 120_000);
  }, 300_000);

  it("a runner Pod deleted mid-run fails the run with the Job's reason; its stored results have no duplicates", async () => {
    await apply(testRun('pod-deleted', bigDataset));
    const running = await phase('pod-deleted', ['Running']);
    const id = running.metadata.uid as string;
    await eventually('some results', async () => ((await stack.api('GET', `/test-runs/${id}`)).body.processed_images > 0 ? true : undefined));
    const res = await cluster.kubectl(['delete', 'pod', '-l', `kinfer.io/job-id=${id}`, '--wait=false']);
    expect(res.stderr).toBe('');
    const failed = await phase('pod-deleted', ['Failed', 'Completed'], 90_000);
    expect(failed.status.phase).toBe('Failed');
    expect(failed.status.message).toMatch(/BackoffLimitExceeded|received SIGTERM before finishing/);
    const { rows } = await stack.db.query('SELECT count(*)::int AS n, count(DISTINCT image_index)::int AS d FROM test_image_results WHERE test_run_id = $1', [
      id,
    ]);
    expect(rows[0].n).toBe(rows[0].d);
  });
});

describe('the API server restarted', () => {
  it('down for 10 s mid-run: the run completes, with one Job, and its status catches up', async () => {
    await apply(testRun('through-restart', bigDataset));
    const running = await phase('through-restart', ['Running']);
    // The runner goes on meanwhile (it reports to the callback service, not the API server).
    await cluster.cp.restartApiserver(10_000);
    const done = await phase('through-restart', ['Completed', 'Failed'], 120_000);
    expect(done.status).toMatchObject({ phase: 'Completed', processedImages: 600 });
    expect(await jobsOf(running.metadata.uid)).toHaveLength(1);
  }, 240_000);
});

describe('lifecycle', () => {
  it('deleting a running InferenceJob cancels the run and removes its Job; the finalizer does not block', async () => {
    await apply(testRun('to-delete', bigDataset));
    const running = await phase('to-delete', ['Running']);
    const pid = await runnerPid(running.metadata.uid);
    const res = await cluster.kubectl(['delete', 'ij', 'to-delete', '--timeout=30s']);
    expect(res.stderr).toBe('');
    expect((await cluster.kubectl(['get', 'ij', 'to-delete'])).stderr).toMatch(/NotFound/);
    expect((await stack.api('GET', `/test-runs/${running.metadata.uid}`)).body.status).toBe('cancelled');
    await eventually('Job deleted', async () => ((await jobsOf(running.metadata.uid)).length === 0 ? true : undefined));
    await eventually('runner stopped', async () => (alive(pid) ? undefined : true));
  });

  it('a controller restarted mid-run creates no second Job, and the run completes', async () => {
    await apply(testRun('survivor', bigDataset));
    const running = await phase('survivor', ['Running']);
    const pid = await runnerPid(running.metadata.uid);
    process.kill(pid, 'SIGSTOP');
    try {
      await stack.restartController('SIGKILL');
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    const done = await phase('survivor', ['Completed', 'Failed']);
    expect(done.status).toMatchObject({ phase: 'Completed', processedImages: 600 });
    expect(await jobsOf(running.metadata.uid)).toHaveLength(1);
  });
});

describe('two controller replicas', () => {
  let replica: ChildProcess;

  afterAll(() => {
    replica?.kill('SIGKILL');
  });

  const leaseHolder = async () =>
    (
      await cluster.kc
        .makeApiClient((await import('@kubernetes/client-node')).CoordinationV1Api)
        .readNamespacedLease({ name: 'kinfer-controller', namespace: 'default' })
    ).spec?.holderIdentity;
  const reporters = async (name: string) => {
    const events = JSON.parse((await cluster.kubectl(['get', 'events', '--field-selector', `involvedObject.name=${name}`, '-o', 'json'])).stdout).items;
    return new Set(events.map((e: { reportingInstance: string }) => e.reportingInstance));
  };

  it('only the leader acts, and the standby takes over when the leader dies', async () => {
    replica = spawn(process.execPath, [fileURLToPath(new URL('../../src/controller/main.ts', import.meta.url))], {
      env: { ...stack.controllerEnv, KINFER_API_PORT: String(await freePort()), KINFER_IDENTITY: 'replica-b' },
      stdio: 'ignore',
    });
    const first = await eventually('a leader', leaseHolder);
    await apply(testRun('two-replicas-1', smallDataset));
    const one = await phase('two-replicas-1', ['Completed', 'Failed']);
    expect(one.status.phase).toBe('Completed');
    expect(await jobsOf(one.metadata.uid)).toHaveLength(1);
    expect([...(await reporters('two-replicas-1'))]).toEqual([first]);

    // Kill whichever replica leads; the other (or the restarted one) takes over after the lease expires.
    if (first === 'replica-b') replica.kill('SIGKILL');
    else await stack.restartController('SIGKILL');
    const second = await eventually(
      'a new leader',
      async () => {
        const holder = await leaseHolder();
        return holder && holder !== first ? holder : undefined;
      },
      30_000,
    );
    await apply(testRun('two-replicas-2', smallDataset));
    const two = await phase('two-replicas-2', ['Completed', 'Failed']);
    expect(two.status.phase).toBe('Completed');
    expect(await jobsOf(two.metadata.uid)).toHaveLength(1);
    expect([...(await reporters('two-replicas-2'))]).toEqual([second]);
  });
});
