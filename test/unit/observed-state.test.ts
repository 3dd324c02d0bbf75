import type * as k8s from '@kubernetes/client-node';
import { jobFailure, podNotStarting, statusFor } from '../../src/controller/kubernetes/observed-state.ts';
import type { TestRun } from '../../src/db/entities.ts';

const created = new Date('2026-11-24T10:00:00Z');
const pod = (status: k8s.V1PodStatus): k8s.V1Pod => ({ metadata: { name: 'p', creationTimestamp: created }, status });

describe('why a runner Pod is not starting', () => {
  it('names image pull errors and unschedulable Pods, since their creation', () => {
    expect(podNotStarting([pod({ phase: 'Pending', containerStatuses: [{ name: 'runner', image: 'x', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'ImagePullBackOff', message: 'back-off pulling x' } } }] })])).toEqual({
      reason: 'ImagePullBackOff',
      message: 'back-off pulling x',
      since: created,
    });
    expect(podNotStarting([pod({ phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/3 nodes' }] })])?.reason).toBe('Unschedulable');
    expect(podNotStarting([pod({ phase: 'Pending' })])?.reason).toBe('PodPending');
  });

  it('says nothing about running or finished Pods', () => {
    expect(podNotStarting([pod({ phase: 'Running' }), pod({ phase: 'Failed' })])).toBeUndefined();
  });
});

describe('why a Job failed', () => {
  it('gives the Job condition and each runner exit code', () => {
    const job: k8s.V1Job = { metadata: { name: 'kinfer-1' }, status: { conditions: [{ type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' }] } };
    const exited = (code: number) => pod({ phase: 'Failed', containerStatuses: [{ name: 'runner', image: 'x', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode: code, reason: 'Error' } } }] });
    expect(jobFailure(job, [exited(137), exited(1)])).toBe('Job kinfer-1 failed: BackoffLimitExceeded: Job has reached the specified backoff limit; runner exit code 137 (Error), exit code 1 (Error)');
  });

  it('treats a Job that succeeded without a report as a failure, and a running Job as none', () => {
    expect(jobFailure({ metadata: { name: 'j' }, status: { conditions: [{ type: 'Complete', status: 'True' }] } }, [])).toMatch(/succeeded but the runner never reported completion/);
    expect(jobFailure({ metadata: { name: 'j' }, status: { active: 1 } }, [])).toBeUndefined();
  });
});

describe('InferenceJob status from the run', () => {
  const row = (over: Partial<TestRun>): TestRun =>
    ({ id: 'id-1', status: 'pending', processed_images: 0, total_images: null, progress_percent: 0, started_at: null, completed_at: null, results_path: null, error_message: null, primary_metric_name: null, primary_metric_value: null, ...over }) as TestRun;
  const now = new Date('2026-11-24T10:05:00Z');

  it('is Pending until the runner reports, then Running with progress', () => {
    expect(statusFor(row({}), 'kinfer-id-1', undefined, undefined, now)).toMatchObject({ phase: 'Pending', progress: '0/?' });
    const running = statusFor(row({ status: 'running', started_at: created, processed_images: 40, total_images: 100, progress_percent: 40 }), 'kinfer-id-1', undefined, undefined, now);
    expect(running).toMatchObject({ phase: 'Running', progress: '40/100', progressPercent: 40 });
    expect(running.conditions!.find((c) => c.type === 'Running')).toMatchObject({ status: 'True' });
  });

  it('keeps transition times, shows the metric, and the Job failure reason when there is one', () => {
    const first = statusFor(row({ status: 'running', started_at: created }), 'kinfer-id-1', undefined, undefined, created);
    const done = statusFor(
      row({ status: 'failed', started_at: created, completed_at: now, error_message: 'boom', primary_metric_name: 'accuracy', primary_metric_value: 0.91234 }),
      'kinfer-id-1',
      first,
      { type: 'Failed', status: 'True', reason: 'DeadlineExceeded', message: 'Job was active longer than specified deadline' },
      now,
    );
    expect(done.phase).toBe('Failed');
    expect(done.primaryMetric).toEqual({ name: 'accuracy', value: 0.91234, display: 'accuracy=0.912' });
    expect(done.conditions!.find((c) => c.type === 'JobCreated')!.lastTransitionTime).toBe(created.toISOString());
    expect(done.conditions!.find((c) => c.type === 'Running')).toMatchObject({ status: 'False', reason: 'Finished' });
    expect(done.conditions!.find((c) => c.type === 'JobFailed')).toMatchObject({ reason: 'DeadlineExceeded' });
    expect(done.message).toBe('boom');
  });
});
