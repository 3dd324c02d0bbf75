// The status an InferenceJob shows, as a pure function of its run's row and what the cluster says
// about its Job. Conditions keep their lastTransitionTime while their status stays the same.
import { isDeepStrictEqual } from 'node:util';
import type * as k8s from '@kubernetes/client-node';
import { conditionReasonOf, type JobStatus } from '../../contract/index.ts';
import type { Job } from '../../db/job-store.ts';
import { CONDITION, REASON, type Condition, type ConditionType, type InferenceJobStatus, type Phase } from '../../kube/inference-job.ts';

export const PHASE: Record<JobStatus, Phase> = { pending: 'Pending', running: 'Running', completed: 'Completed', failed: 'Failed', cancelled: 'Cancelled' };

const iso = (d: Date | string | null | undefined) => (d ? new Date(d).toISOString() : undefined);

export function condition(
  type: ConditionType,
  reason: string,
  message: string,
  previous: Condition[] | undefined,
  now: Date,
  status: 'True' | 'False' = 'True',
): Condition {
  const old = previous?.find((c) => c.type === type && c.status === status);
  return { type, status, reason, message, lastTransitionTime: old?.lastTransitionTime ?? now.toISOString() };
}

/** The status of an InferenceJob the admission refused: it never gets a row or a Job. */
export function refusedStatus(messages: string[], previous: InferenceJobStatus | undefined, now: Date): InferenceJobStatus {
  const message = messages.join('; ');
  return {
    phase: 'Failed',
    conditions: [condition(CONDITION.Admitted, REASON.Invalid, message, previous?.conditions, now, 'False')],
    message,
  };
}

/** The status an InferenceJob should show for its database row. Running means the runner has reported. */
export function statusFor(
  row: Job,
  jobName: string | undefined,
  previous: InferenceJobStatus | undefined,
  /** The Job's own Failed condition (DeadlineExceeded, BackoffLimitExceeded, PodFailurePolicy...). */
  jobFailed: k8s.V1JobCondition | undefined,
  now: Date,
): InferenceJobStatus {
  const phase = PHASE[row.status];
  const prev = previous?.conditions;
  const conditions: Condition[] = [condition(CONDITION.Admitted, REASON.Admitted, 'the request passed admission', prev, now)];
  if (jobName) conditions.push(condition(CONDITION.JobCreated, REASON.JobCreated, `Job ${jobName} created`, prev, now));
  if (row.started_at) {
    conditions.push(
      phase === 'Running'
        ? condition(CONDITION.Running, REASON.RunnerReported, 'the runner is processing images', prev, now)
        : condition(CONDITION.Running, REASON.Finished, 'the runner is no longer running', prev, now, 'False'),
    );
  }
  if (phase === 'Completed') conditions.push(condition(CONDITION.Completed, REASON.RunnerCompleted, `processed ${row.processed_images} images`, prev, now));
  if (jobFailed) conditions.push(condition(CONDITION.JobFailed, jobFailed.reason ?? REASON.Failed, jobFailed.message ?? '', prev, now));
  const reason = row.error_code ? conditionReasonOf(row.error_code) : undefined;
  if (phase === 'Failed') conditions.push(condition(CONDITION.Failed, reason ?? REASON.Failed, row.error_message ?? 'failed', prev, now));
  if (phase === 'Cancelled') conditions.push(condition(CONDITION.Cancelled, reason ?? REASON.CancelledByUser, row.error_message ?? 'cancelled', prev, now));
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
    ...(metricName && metricValue !== null
      ? { primaryMetric: { name: metricName, value: metricValue, display: `${metricName}=${metricValue.toFixed(3)}` } }
      : {}),
    ...(row.results_path ? { resultsPath: row.results_path } : {}),
    ...(row.started_at ? { startTime: iso(row.started_at) } : {}),
    ...(row.completed_at ? { completionTime: iso(row.completed_at) } : {}),
    ...(row.error_message ? { message: row.error_message } : {}),
  };
}

/** Equal but for observedGeneration, whatever the key order (the API server returns keys sorted). */
export function sameStatus(a: InferenceJobStatus | undefined, b: InferenceJobStatus): boolean {
  const strip = ({ observedGeneration: _, ...rest }: InferenceJobStatus) => rest;
  return isDeepStrictEqual(strip(a ?? {}), strip(b));
}
