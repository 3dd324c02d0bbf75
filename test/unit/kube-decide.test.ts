// The Kubernetes controller's decide(): every condition transition, admission, stuck Pods,
// deadlines, deletion and a change of leader, table by table, with a fixed clock.
import type * as k8s from '@kubernetes/client-node';
import { decide, jobFailure, podNotStarting, type Action, type Observed } from '../../src/controller/kubernetes/decide.ts';
import { observe, type World } from '../../src/controller/kubernetes/observe.ts';
import { statusFor } from '../../src/controller/kubernetes/status.ts';
import type { TestRun } from '../../src/db/entities.ts';
import type { InferenceJob, InferenceJobStatus } from '../../src/kube/inference-job.ts';

const JOB_ID = '6f1c2a8e-1111-4222-8333-444455556666';
const JOB_NAME = `kinfer-${JOB_ID}`;
const created = new Date('2026-11-24T10:00:00Z');
const now = new Date('2026-11-24T10:05:00Z');
const opts = { podStartTimeoutMs: 60_000, finalizerGiveUpMs: 120_000, runnerStallMs: 600_000 };

const pod = (status: k8s.V1PodStatus, createdAt = created): k8s.V1Pod => ({ metadata: { name: 'p', creationTimestamp: createdAt }, status });
const waiting = (reason: string, message = '') =>
  pod({
    phase: 'Pending',
    containerStatuses: [{ name: 'runner', image: 'x', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason, message } } }],
  });
const exited = (code: number) =>
  pod({
    phase: 'Failed',
    containerStatuses: [{ name: 'runner', image: 'x', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode: code, reason: 'Error' } } }],
  });
const job = (conditions: k8s.V1JobCondition[] = [], extra: Partial<k8s.V1ObjectMeta> = {}): k8s.V1Job => ({
  metadata: { name: JOB_NAME, ...extra },
  status: { conditions },
});
const row = (over: Partial<TestRun> = {}): TestRun =>
  ({
    id: JOB_ID,
    status: 'pending',
    processed_images: 0,
    total_images: null,
    progress_percent: 0,
    started_at: null,
    completed_at: null,
    results_path: null,
    error_message: null,
    error_code: null,
    primary_metric_name: null,
    primary_metric_value: null,
    ...over,
  }) as TestRun;
const ij = (over: { status?: InferenceJobStatus; finalizers?: string[]; deletionTimestamp?: Date } = {}): InferenceJob => ({
  apiVersion: 'kinfer.io/v1alpha1',
  kind: 'InferenceJob',
  metadata: {
    name: 'eval',
    namespace: 'default',
    uid: JOB_ID,
    generation: 1,
    finalizers: over.finalizers ?? ['kinfer.io/cleanup'],
    ...(over.deletionTimestamp ? { deletionTimestamp: over.deletionTimestamp } : {}),
  },
  spec: {
    type: 'test_run',
    taskType: 'image_classification',
    checkpointPath: 's3://m/x.onnx',
    dataset: { path: 's3://d/x', split: 'test' },
    parallelism: 1,
    backoffLimit: 0,
  },
  ...(over.status ? { status: over.status } : {}),
});
const observed = (over: Partial<Observed>): Observed => ({ ij: ij(), kind: 'test_run', jobId: JOB_ID, row: null, job: undefined, pods: [], ...over });
const types = (actions: Action[]) => actions.map((a) => a.type);
const statusOf = (actions: Action[]) => (actions.find((a) => a.type === 'patchStatus') as Extract<Action, { type: 'patchStatus' }> | undefined)?.status;
const conditionsOf = (status: InferenceJobStatus | undefined) => status?.conditions?.map((c) => `${c.type}=${c.status}/${c.reason}`);
const events = (actions: Action[]) =>
  actions.filter((a): a is Extract<Action, { type: 'event' }> => a.type === 'event').map((e) => `${e.eventType}/${e.reason}`);
/** What observe() reads for an InferenceJob without a run: the API server's copy is `current`. */
const world = (current: World['current']): World => ({
  store: { get: async () => null } as unknown as World['store'],
  // Not reached: the specs given here fail the schema first.
  admission: {} as World['admission'],
  current,
  job: () => undefined,
  pods: () => [],
});
/** The status decide() wrote last time: a world in which nothing has changed since. */
const settled = (o: Observed) => ({ ...o, ij: { ...o.ij, status: statusOf(decide(o, opts, now)) } });

describe('admission at the kubectl door', () => {
  it('adds the finalizer before anything else', () => {
    expect(
      types(decide(observed({ ij: ij({ finalizers: [] }), admission: { admitted: true, job: { kind: 'test_run', row: {} as never } } }), opts, now)),
    ).toEqual(['addFinalizer', 'createRow', 'requeueAfter']);
  });

  it('refuses: Failed with Admitted=False/Invalid, a Warning Event with the messages, nothing started', () => {
    const actions = decide(
      observed({ admission: { admitted: false, problems: [{ field: 'spec.checkpointPath', message: 'no such object: s3://m/x.onnx' }] } }),
      opts,
      now,
    );
    expect(types(actions)).toEqual(['patchStatus', 'event']);
    const status = statusOf(actions)!;
    expect(status).toMatchObject({ phase: 'Failed', message: 'spec.checkpointPath: no such object: s3://m/x.onnx' });
    expect(conditionsOf(status)).toEqual(['Admitted=False/Invalid']);
    expect(actions[1]).toEqual({ type: 'event', eventType: 'Warning', reason: 'Invalid', message: 'spec.checkpointPath: no such object: s3://m/x.onnx' });
  });

  it('stays refused without writing again (the spec is immutable)', () => {
    const refused = observed({ admission: { admitted: false, problems: [{ field: 'f', message: 'm' }] } });
    expect(decide(settled(refused), opts, now)).toEqual([]);
  });

  it("refuses once: a reconcile whose informer copy predates its own refusal reads the API server's copy and writes nothing", async () => {
    // An invalid spec (zod refuses it before any storage check); no run in the database.
    const invalid = { ...ij(), spec: { ...ij().spec, taskType: 'not_a_task' } } as unknown as InferenceJob;
    const refusal = decide(
      await observe(
        invalid,
        world(async () => invalid),
        JOB_NAME,
      ),
      opts,
      now,
    );
    expect(types(refusal)).toEqual(['patchStatus', 'event']);
    // Next reconcile (the finalizer's watch event came first): the cached copy has no status yet,
    // the API server's has the refusal just written.
    const written = { ...invalid, status: statusOf(refusal) };
    const observedAgain = await observe(
      invalid,
      world(async () => written),
      JOB_NAME,
    );
    expect(observedAgain.admission).toBeUndefined();
    expect(decide(observedAgain, opts, now)).toEqual([]);
    // Another object of the same name (deleted and created again) is not taken for this one.
    const other = { ...written, metadata: { ...written.metadata, uid: 'another-uid' } };
    expect(
      types(
        decide(
          await observe(
            invalid,
            world(async () => other),
            JOB_NAME,
          ),
          opts,
          now,
        ),
      ),
    ).toEqual(['patchStatus', 'event']);
  });

  it('admitted: creates the run and comes back for the rest', () => {
    const newJob = { kind: 'test_run' as const, row: { checkpoint_path: 's3://m/x.onnx' } as never };
    expect(decide(observed({ admission: { admitted: true, job: newJob } }), opts, now)).toEqual([
      { type: 'createRow', job: newJob },
      { type: 'requeueAfter', ms: 0 },
    ]);
  });
});

describe('an active run', () => {
  it('a runner whose Pod runs but which stopped reporting: failed RUNNER_STALLED and its Job deleted; one still reporting is checked again later', () => {
    const lastReport = new Date(now.getTime() - opts.runnerStallMs - 1);
    const runningPod = pod({ phase: 'Running', startTime: new Date(lastReport.getTime() - 1000) });
    const before = settled(observed({ row: row({ status: 'running', updated_at: now } as never), job: job(), pods: [runningPod] }));
    const stalled = decide({ ...before, row: row({ status: 'running', updated_at: lastReport } as never) }, opts, now);
    expect(stalled).toContainEqual({
      type: 'failRun',
      reason: 'no progress for 600 s: the runner stopped reporting (no progress or heartbeat) and was stopped',
      code: 'RUNNER_STALLED',
    });
    expect(stalled).toContainEqual({ type: 'deleteJob', why: 'its runner stopped reporting' });
    expect(statusOf(stalled)).toMatchObject({ phase: 'Failed' });
    const recent = new Date(now.getTime() - 1000);
    const fine = decide(settled(observed({ row: row({ status: 'running', updated_at: recent } as never), job: job(), pods: [runningPod] })), opts, now);
    expect(types(fine)).toEqual(['requeueAfter']);
    expect(fine[0]).toEqual({ type: 'requeueAfter', ms: opts.runnerStallMs - 1000 + 100 });
  });

  it('pending without a Job: Secret + Job + Event, status Pending with Admitted and JobCreated, no phase Event', () => {
    const actions = decide(observed({ row: row() }), opts, now);
    expect(types(actions)).toEqual(['createSecret', 'createJob', 'event', 'patchStatus']);
    expect(events(actions)).toEqual(['Normal/JobCreated']);
    expect(statusOf(actions)).toMatchObject({ phase: 'Pending', jobId: JOB_ID, jobName: JOB_NAME, progress: '0/?' });
    expect(conditionsOf(statusOf(actions))).toEqual(['Admitted=True/Admitted', 'JobCreated=True/JobCreated']);
  });

  it('writes nothing when nothing changed, whatever the key order the API server returns', () => {
    const o = observed({ row: row(), job: job() });
    const s = settled(o);
    const reordered = { ...s, ij: { ...s.ij, status: Object.fromEntries(Object.entries(s.ij.status!).reverse()) as InferenceJobStatus } };
    expect(decide(reordered, opts, now)).toEqual([]);
  });

  it('Pending -> Running when the runner reports, with a Normal Running Event', () => {
    const before = settled(observed({ row: row(), job: job() }));
    const actions = decide(
      { ...before, row: row({ status: 'running', started_at: created, processed_images: 40, total_images: 100, progress_percent: 40 }) },
      opts,
      now,
    );
    expect(types(actions)).toEqual(['patchStatus', 'event']);
    expect(statusOf(actions)).toMatchObject({ phase: 'Running', progress: '40/100', progressPercent: 40 });
    expect(conditionsOf(statusOf(actions))).toEqual(['Admitted=True/Admitted', 'JobCreated=True/JobCreated', 'Running=True/RunnerReported']);
    expect(events(actions)).toEqual(['Normal/Running']);
  });

  it('Running -> Completed: Running turns False, the metric shows, transition times are kept', () => {
    const running = settled(observed({ row: row({ status: 'running', started_at: created }), job: job() }));
    const done = row({
      status: 'completed',
      started_at: created,
      completed_at: now,
      processed_images: 19,
      total_images: 19,
      progress_percent: 100,
      primary_metric_name: 'accuracy',
      primary_metric_value: 0.94736,
    });
    const actions = decide({ ...running, row: done, job: job([{ type: 'Complete', status: 'True' }]) }, opts, new Date(now.getTime() + 60_000));
    const status = statusOf(actions)!;
    expect(conditionsOf(status)).toEqual(['Admitted=True/Admitted', 'JobCreated=True/JobCreated', 'Running=False/Finished', 'Completed=True/RunnerCompleted']);
    expect(status.primaryMetric).toEqual({ name: 'accuracy', value: 0.94736, display: 'accuracy=0.947' });
    expect(status.conditions![0]!.lastTransitionTime).toBe(now.toISOString());
    expect(events(actions)).toEqual(['Normal/Completed']);
    expect(types(actions)).not.toContain('failRun');
  });

  it("a runner's own failure code becomes the Failed condition's reason", () => {
    const failed = row({
      status: 'failed',
      started_at: created,
      completed_at: now,
      error_message: "the model's task is object_detection but the job asks for image_classification",
      error_code: 'MODEL_METADATA_INVALID',
    });
    const status = statusOf(
      decide(observed({ row: failed, job: job([{ type: 'Failed', status: 'True', reason: 'PodFailurePolicy', message: 'exit 1' }]) }), opts, now),
    )!;
    expect(status.conditions!.find((c) => c.type === 'Failed')).toMatchObject({ reason: 'ModelMetadataInvalid', message: failed.error_message });
    expect(status.conditions!.find((c) => c.type === 'JobFailed')).toMatchObject({ reason: 'PodFailurePolicy' });
  });

  it.each([
    ['BackoffLimitExceeded', 'BACKOFF_LIMIT_EXCEEDED', 'BackoffLimitExceeded'],
    ['DeadlineExceeded', 'DEADLINE_EXCEEDED', 'DeadlineExceeded'],
    ['PodFailurePolicy', 'JOB_FAILED', 'JobFailed'],
  ])('a Job that failed with %s fails the run (code %s, reason %s), once', (jobReason, code, reason) => {
    const o = observed({
      row: row({ status: 'running', started_at: created }),
      job: job([{ type: 'Failed', status: 'True', reason: jobReason, message: 'm' }]),
      pods: [exited(137)],
    });
    const actions = decide(o, opts, now);
    expect(actions[0]).toEqual({ type: 'failRun', reason: `Job ${JOB_NAME} failed: ${jobReason}: m; runner exit code 137 (Error)`, code });
    const status = statusOf(actions)!;
    expect(status.phase).toBe('Failed');
    expect(status.conditions!.find((c) => c.type === 'Failed')!.reason).toBe(reason);
    expect(status.conditions!.find((c) => c.type === 'JobFailed')!.reason).toBe(jobReason);
    expect(events(actions)).toEqual(['Warning/Failed']);
    expect(types(actions).filter((t) => t === 'patchStatus')).toHaveLength(1);
  });

  it('a Job that succeeded without a report fails the run', () => {
    const actions = decide(observed({ row: row({ status: 'running', started_at: created }), job: job([{ type: 'Complete', status: 'True' }]) }), opts, now);
    expect(actions[0]).toMatchObject({ type: 'failRun', code: 'JOB_SUCCEEDED_WITHOUT_REPORT' });
  });

  it('a Pod stuck Pending waits until the timeout, then fails the run and deletes the Job', () => {
    const young = observed({ row: row(), job: job(), pods: [waiting('ImagePullBackOff', 'back-off pulling x')] });
    const early = decide(young, opts, new Date(created.getTime() + 20_000));
    expect(types(early)).toEqual(['requeueAfter', 'patchStatus']);
    expect(early[0]).toEqual({ type: 'requeueAfter', ms: 40_100 });
    const late = decide(young, opts, new Date(created.getTime() + 60_000));
    expect(late.slice(0, 2)).toEqual([
      { type: 'failRun', reason: 'runner Pod did not start within 60s: ImagePullBackOff: back-off pulling x', code: 'POD_NOT_STARTING' },
      { type: 'deleteJob', why: 'its Pod never started' },
    ]);
    expect(statusOf(late)!.conditions!.find((c) => c.type === 'Failed')!.reason).toBe('PodNotStarting');
    // Never Running, since the runner never reported.
    expect(statusOf(late)!.conditions!.map((c) => c.type)).not.toContain('Running');
  });

  it('recreates a Secret that its Pod says is missing (the controller cannot read Secrets)', () => {
    const o = observed({ row: row(), job: job(), pods: [waiting('CreateContainerConfigError', `secret "kinfer-${JOB_ID}-runner" not found`)] });
    expect(types(decide(o, opts, new Date(created.getTime() + 1000)))).toEqual(['createSecret', 'requeueAfter', 'patchStatus']);
  });
});

describe('cancellation, deletion, leader change', () => {
  it('a cancelled run whose Job still runs: the Job is deleted, Cancelled shows', () => {
    const actions = decide(
      observed({
        row: row({ status: 'cancelled', started_at: created, completed_at: now, error_message: 'cancelled by user', error_code: 'CANCELLED_BY_USER' }),
        job: job(),
      }),
      opts,
      now,
    );
    expect(actions[0]).toEqual({ type: 'deleteJob', why: 'the run was cancelled' });
    expect(conditionsOf(statusOf(actions))!.at(-1)).toBe('Cancelled=True/CancelledByUser');
    expect(events(actions)).toEqual(['Normal/Cancelled']);
  });

  it('a finished Job is not deleted again', () => {
    const o = observed({ row: row({ status: 'cancelled', started_at: created }), job: job([{ type: 'Failed', status: 'True', reason: 'DeadlineExceeded' }]) });
    expect(types(decide(o, opts, now))).not.toContain('deleteJob');
  });

  it('deleting: cancel the run, delete the Job, release the finalizer; best effort past the give-up time', () => {
    const deleting = (at: Date) => observed({ ij: ij({ deletionTimestamp: at }), row: row({ status: 'running', started_at: created }), job: job() });
    expect(decide(deleting(now), opts, now)).toEqual([
      { type: 'cancelRun', bestEffort: false },
      { type: 'deleteJob', why: 'its InferenceJob was deleted', bestEffort: false },
      { type: 'removeFinalizer' },
    ]);
    expect(decide(deleting(created), opts, now).map((a) => ('bestEffort' in a ? a.bestEffort : undefined))).toEqual([true, true, undefined]);
    expect(decide(observed({ ij: ij({ deletionTimestamp: now, finalizers: [] }), row: row() }), opts, now)).toEqual([]);
  });

  it("a new leader finds the old leader's Job and status: no second Job, no write", () => {
    const later = new Date(now.getTime() + 3_600_000);
    const world = settled(
      observed({
        row: row({
          status: 'running',
          started_at: created,
          processed_images: 7,
          total_images: 100,
          progress_percent: 7,
          updated_at: new Date(later.getTime() - 1000),
        } as never),
        job: job(),
        pods: [pod({ phase: 'Running' })],
      }),
    );
    // Only the check for a stalled runner, due when the last report is runnerStallMs old.
    expect(decide(world, opts, later)).toEqual([{ type: 'requeueAfter', ms: opts.runnerStallMs - 1000 + 100 }]);
  });

  it('a new leader finds a run whose Job the old leader never created: it creates it', () => {
    const world = observed({ ij: ij({ status: { phase: 'Pending', conditions: [] } }), row: row() });
    expect(types(decide(world, opts, now)).slice(0, 2)).toEqual(['createSecret', 'createJob']);
  });
});

describe('why a runner Pod is not starting, why a Job failed', () => {
  it('names image pull errors and unschedulable Pods, since their creation', () => {
    expect(podNotStarting([waiting('ImagePullBackOff', 'back-off pulling x')])).toEqual({
      reason: 'ImagePullBackOff',
      message: 'back-off pulling x',
      since: created,
    });
    expect(
      podNotStarting([pod({ phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/3 nodes' }] })])
        ?.reason,
    ).toBe('Unschedulable');
    expect(podNotStarting([pod({ phase: 'Pending' })])?.reason).toBe('PodPending');
    expect(podNotStarting([pod({ phase: 'Running' }), pod({ phase: 'Failed' })])).toBeUndefined();
  });

  it('a sharded job: Pods waiting for room while others run are not stuck; one that cannot pull its image is', () => {
    const unschedulable = pod({ phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/3 nodes' }] });
    expect(podNotStarting([pod({ phase: 'Running' }), unschedulable, pod({ phase: 'Pending' })])).toBeUndefined();
    expect(podNotStarting([pod({ phase: 'Succeeded' }), pod({ phase: 'Pending' })])).toBeUndefined();
    expect(podNotStarting([pod({ phase: 'Running' }), waiting('ErrImagePull', 'no such image')])?.reason).toBe('ErrImagePull');
    expect(podNotStarting([unschedulable, pod({ phase: 'Pending' })])?.reason).toBe('Unschedulable');
  });

  it('gives the Job condition and each runner exit code', () => {
    const failed = job([{ type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' }]);
    expect(jobFailure(failed, [exited(137), exited(1)])).toEqual({
      reason: `Job ${JOB_NAME} failed: BackoffLimitExceeded: Job has reached the specified backoff limit; runner exit code 137 (Error), exit code 1 (Error)`,
      code: 'BACKOFF_LIMIT_EXCEEDED',
    });
    expect(jobFailure(job(), [])).toBeUndefined();
  });

  it('shows progress as processed/total and keeps the status free of fields that are unknown', () => {
    expect(statusFor(row(), undefined, undefined, undefined, now)).toEqual({
      phase: 'Pending',
      conditions: [{ type: 'Admitted', status: 'True', reason: 'Admitted', message: 'the request passed admission', lastTransitionTime: now.toISOString() }],
      jobId: JOB_ID,
      processedImages: 0,
      progressPercent: 0,
      progress: '0/?',
    });
  });
});
