// Decisions from what the controller observes: the InferenceJob status a job row implies, and
// why a Job or its Pod will never finish on its own (so the job must be failed with the reason).
import type * as k8s from '@kubernetes/client-node';
import type { JobStatus } from '../../contract/index.ts';
import type { Job } from '../../db/job-store.ts';
import type { Condition, InferenceJobStatus, Phase } from '../../kube/inference-job.ts';

const PHASE: Record<JobStatus, Phase> = { pending: 'Pending', running: 'Running', completed: 'Completed', failed: 'Failed', cancelled: 'Cancelled' };

const iso = (d: Date | string | null | undefined) => (d ? new Date(d).toISOString() : undefined);

function condition(type: string, reason: string, message: string, previous: Condition[] | undefined, now: Date, status: 'True' | 'False' = 'True'): Condition {
  const old = previous?.find((c) => c.type === type && c.status === status);
  return { type, status, reason, message, lastTransitionTime: old?.lastTransitionTime ?? now.toISOString() };
}

/** The status an InferenceJob should show for its database row. Running means the runner has reported. */
export function statusFor(
  row: Job,
  jobName: string | undefined,
  previous: InferenceJobStatus | undefined,
  /** The Job's own Failed condition (DeadlineExceeded, BackoffLimitExceeded, PodFailurePolicy...). */
  jobFailed?: k8s.V1JobCondition,
  now = new Date(),
): InferenceJobStatus {
  const phase = PHASE[row.status];
  const prev = previous?.conditions;
  const conditions: Condition[] = [];
  if (jobName) conditions.push(condition('JobCreated', 'JobCreated', `Job ${jobName} created`, prev, now));
  if (row.started_at) {
    conditions.push(
      phase === 'Running'
        ? condition('Running', 'RunnerReported', 'the runner is processing images', prev, now)
        : condition('Running', 'Finished', 'the runner is no longer running', prev, now, 'False'),
    );
  }
  if (phase === 'Completed') conditions.push(condition('Completed', 'RunnerCompleted', `processed ${row.processed_images} images`, prev, now));
  if (jobFailed) conditions.push(condition('JobFailed', jobFailed.reason ?? 'Failed', jobFailed.message ?? '', prev, now));
  if (phase === 'Failed') conditions.push(condition('Failed', 'JobFailed', row.error_message ?? 'failed', prev, now));
  if (phase === 'Cancelled') conditions.push(condition('Cancelled', 'Cancelled', row.error_message ?? 'cancelled', prev, now));
  const metricName = 'primary_metric_name' in row ? row.primary_metric_name : null;
  const metricValue = 'primary_metric_value' in row ? row.primary_metric_value : null;
  return {
    phase,
    conditions,
    jobId: row.id,
    ...(jobName ? { jobName } : {}),
    processedImages: row.processed_images,
    ...(row.total_images !== null ? { totalImages: row.total_images } : {}),
    progressPercent: Math.round(row.progress_percent * 10) / 10,
    progress: `${row.processed_images}/${row.total_images ?? '?'}`,
    ...(metricName && metricValue !== null ? { primaryMetric: { name: metricName, value: metricValue, display: `${metricName}=${metricValue.toFixed(3)}` } } : {}),
    ...(row.results_path ? { resultsPath: row.results_path } : {}),
    ...(row.started_at ? { startTime: iso(row.started_at) } : {}),
    ...(row.completed_at ? { completionTime: iso(row.completed_at) } : {}),
    ...(row.error_message ? { message: row.error_message } : {}),
  };
}

/** Why a finished Job failed, with the runner's exit code when a Pod shows one. */
export function jobFailure(job: k8s.V1Job, pods: k8s.V1Pod[]): string | undefined {
  const failed = job.status?.conditions?.find((c) => c.type === 'Failed' && c.status === 'True');
  if (!failed) {
    const complete = job.status?.conditions?.find((c) => c.type === 'Complete' && c.status === 'True');
    return complete ? `Job ${job.metadata?.name} succeeded but the runner never reported completion` : undefined;
  }
  const exits = pods
    .map((p) => p.status?.containerStatuses?.[0]?.state?.terminated)
    .filter((t): t is k8s.V1ContainerStateTerminated => Boolean(t))
    .map((t) => `exit code ${t.exitCode}${t.reason ? ` (${t.reason})` : ''}`);
  return `Job ${job.metadata?.name} failed: ${failed.reason ?? 'Failed'}: ${failed.message ?? ''}${exits.length ? `; runner ${exits.join(', ')}` : ''}`.trim();
}

const STUCK_WAITING = new Set(['ErrImagePull', 'ImagePullBackOff', 'InvalidImageName', 'CreateContainerConfigError', 'CreateContainerError']);

/** A Pod that has not started, with why and since when. */
export function podNotStarting(pods: k8s.V1Pod[]): { reason: string; message: string; since: Date } | undefined {
  for (const pod of pods) {
    if (pod.status?.phase !== 'Pending' || pod.metadata?.deletionTimestamp) continue;
    const since = new Date(pod.metadata?.creationTimestamp ?? Date.now());
    const waiting = pod.status.containerStatuses?.map((s) => s.state?.waiting).find((w) => w?.reason && STUCK_WAITING.has(w.reason));
    if (waiting) return { reason: waiting.reason!, message: waiting.message ?? '', since };
    const unscheduled = pod.status.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False');
    if (unscheduled) return { reason: unscheduled.reason ?? 'Unschedulable', message: unscheduled.message ?? '', since };
    return { reason: 'PodPending', message: `Pod ${pod.metadata?.name} has not started`, since };
  }
  return undefined;
}
