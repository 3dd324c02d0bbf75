// The Kubernetes controller's decisions, as one pure function: what it observed of one
// InferenceJob (its run's row, its Job and Pods, the admission's verdict) and the time in, the
// list of actions out. Nothing here reads the clock or calls anything; act.ts does what this
// returns. The steps, in order (the Kubebuilder CronJob controller's shape):
//   1. deleted?            cancel the run, delete its Job, release the finalizer
//   2. ensure the finalizer
//   3. no run yet?         refused by the admission: Failed with Admitted=False, an Event, nothing
//                          started; admitted: create the run's row (and come back)
//   4. an active run:      create Secret + Job; fail the run when its Job failed, its Pod cannot
//                          start in time, or its running runner stopped reporting (stalled);
//                          recreate a Secret its Pod says is missing
//   5. a finished run:     delete a Job still running (cancelled, or failed by us)
//   6. status:             at most one write, none when nothing changed; an Event per phase change
import type * as k8s from '@kubernetes/client-node';
import { isTerminal, type JobErrorCode, type JobKind } from '../../contract/index.ts';
import type { Job } from '../../db/job-store.ts';
import type { FieldProblem } from '../../http/errors.ts';
import { CONDITION, FINALIZER, REASON, type InferenceJob, type InferenceJobStatus } from '../../kube/inference-job.ts';
import type { NewJob } from '../job-mapping.ts';
import { jobNameFor, secretNameFor } from './job-spec.ts';
import { PHASE, refusedStatus, sameStatus, statusFor } from './status.ts';

export interface Observed {
  ij: InferenceJob;
  kind: JobKind;
  /** The run's id: the InferenceJob's uid, or the REST door's job id (annotation). */
  jobId: string;
  row: Job | null;
  /** Present only when there is no row yet and the InferenceJob was not refused before. */
  admission?: { admitted: true; job: NewJob } | { admitted: false; problems: FieldProblem[] };
  job: k8s.V1Job | undefined;
  pods: k8s.V1Pod[];
}

export type Action =
  | { type: 'addFinalizer' }
  | { type: 'removeFinalizer' }
  | { type: 'createRow'; job: NewJob }
  | { type: 'createSecret' }
  | { type: 'createJob' }
  | { type: 'failRun'; reason: string; code: JobErrorCode }
  | { type: 'cancelRun'; bestEffort: boolean }
  | { type: 'deleteJob'; why: string; bestEffort?: boolean }
  | { type: 'patchStatus'; status: InferenceJobStatus }
  | { type: 'event'; eventType: 'Normal' | 'Warning'; reason: string; message: string }
  | { type: 'requeueAfter'; ms: number };

export interface DecideOptions {
  /** A runner Pod not started after this long fails its run (image pull errors, unschedulable...). */
  podStartTimeoutMs: number;
  /** A finalizer is released after this long even if cleanup keeps failing. */
  finalizerGiveUpMs: number;
  /** A runner whose Pod runs but which sent nothing (progress, heartbeat) for this long fails its run. */
  runnerStallMs: number;
}

const JOB_REASON_CODES: Record<string, JobErrorCode> = { BackoffLimitExceeded: 'BACKOFF_LIMIT_EXCEEDED', DeadlineExceeded: 'DEADLINE_EXCEEDED' };

export const jobFinished = (job: k8s.V1Job) =>
  Boolean(job.status?.conditions?.some((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True'));
const jobFailedCondition = (job: k8s.V1Job | undefined) => job?.status?.conditions?.find((c) => c.type === 'Failed' && c.status === 'True');

/** Why a finished Job failed, with the runner's exit code when a Pod shows one. */
export function jobFailure(job: k8s.V1Job, pods: k8s.V1Pod[]): { reason: string; code: JobErrorCode } | undefined {
  const failed = jobFailedCondition(job);
  if (!failed) {
    const complete = job.status?.conditions?.find((c) => c.type === 'Complete' && c.status === 'True');
    return complete
      ? { reason: `Job ${job.metadata?.name} succeeded but the runner never reported completion`, code: 'JOB_SUCCEEDED_WITHOUT_REPORT' }
      : undefined;
  }
  const exits = pods
    .map((p) => p.status?.containerStatuses?.[0]?.state?.terminated)
    .filter((t): t is k8s.V1ContainerStateTerminated => Boolean(t))
    .map((t) => `exit code ${t.exitCode}${t.reason ? ` (${t.reason})` : ''}`);
  const reason =
    `Job ${job.metadata?.name} failed: ${failed.reason ?? 'Failed'}: ${failed.message ?? ''}${exits.length ? `; runner ${exits.join(', ')}` : ''}`.trim();
  return { reason, code: JOB_REASON_CODES[failed.reason ?? ''] ?? 'JOB_FAILED' };
}

const STUCK_WAITING = new Set(['ErrImagePull', 'ImagePullBackOff', 'InvalidImageName', 'CreateContainerConfigError', 'CreateContainerError']);

/**
 * A Pod that has not started, with why and since when. While another Pod of the Job runs or has
 * finished (a sharded job larger than the cluster), a Pending one waits for room rather than
 * being stuck: only one that cannot start at all (its image, its configuration) counts then.
 */
export function podNotStarting(pods: k8s.V1Pod[]): { reason: string; message: string; since: Date } | undefined {
  const someStarted = pods.some((p) => p.status?.phase === 'Running' || p.status?.phase === 'Succeeded');
  for (const pod of pods) {
    if (pod.status?.phase !== 'Pending' || pod.metadata?.deletionTimestamp) continue;
    const since = new Date(pod.metadata?.creationTimestamp ?? 0);
    const waiting = pod.status.containerStatuses?.map((s) => s.state?.waiting).find((w) => w?.reason && STUCK_WAITING.has(w.reason));
    if (waiting) return { reason: waiting.reason!, message: waiting.message ?? '', since };
    if (someStarted) continue;
    const unscheduled = pod.status.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False');
    if (unscheduled) return { reason: unscheduled.reason ?? 'Unschedulable', message: unscheduled.message ?? '', since };
    return { reason: 'PodPending', message: `Pod ${pod.metadata?.name} has not started`, since };
  }
  return undefined;
}

/**
 * The controller may create Secrets but not read them (least privilege): a missing one is seen
 * through the Pod that needs it (`secret "..." not found`).
 */
function secretMissing(pods: k8s.V1Pod[], jobId: string): boolean {
  const name = secretNameFor(jobId);
  return pods.some((p) =>
    p.status?.containerStatuses?.some(
      (s) => s.state?.waiting?.reason === 'CreateContainerConfigError' && (s.state.waiting.message ?? '').includes(`secret "${name}" not found`),
    ),
  );
}

const refused = (status: InferenceJobStatus | undefined) => Boolean(status?.conditions?.some((c) => c.type === CONDITION.Admitted && c.status === 'False'));

/** True when the InferenceJob was refused by the admission: it stays refused (its spec is immutable). */
export function wasRefused(ij: InferenceJob): boolean {
  return refused(ij.status);
}

export function decide(o: Observed, opts: DecideOptions, now: Date): Action[] {
  const { ij, row } = o;
  const jobName = jobNameFor(o.jobId);

  // 1. Deleted: clean up, then let the deletion finish.
  if (ij.metadata.deletionTimestamp) {
    if (!ij.metadata.finalizers?.includes(FINALIZER)) return [];
    const bestEffort = now.getTime() - new Date(ij.metadata.deletionTimestamp).getTime() >= opts.finalizerGiveUpMs;
    return [
      ...(row && !isTerminal(row.status) ? [{ type: 'cancelRun' as const, bestEffort }] : []),
      ...(o.job && !o.job.metadata?.deletionTimestamp ? [{ type: 'deleteJob' as const, why: 'its InferenceJob was deleted', bestEffort }] : []),
      { type: 'removeFinalizer' },
    ];
  }

  // 2. The finalizer, so that a deletion waits for the cleanup.
  const actions: Action[] = ij.metadata.finalizers?.includes(FINALIZER) ? [] : [{ type: 'addFinalizer' }];

  // 3. No run yet.
  if (!row) {
    if (refused(ij.status) || !o.admission) return actions;
    if (!o.admission.admitted) {
      const messages = o.admission.problems.map((p) => `${p.field}: ${p.message}`);
      const status = refusedStatus(messages, ij.status, now);
      return [...actions, { type: 'patchStatus', status }, { type: 'event', eventType: 'Warning', reason: REASON.Invalid, message: status.message! }];
    }
    return [...actions, { type: 'createRow', job: o.admission.job }, { type: 'requeueAfter', ms: 0 }];
  }

  // 4. An active run.
  let projected: Job = row;
  const fail = (reason: string, code: JobErrorCode) => {
    actions.push({ type: 'failRun', reason, code });
    projected = { ...row, status: 'failed', error_message: reason, error_code: code, completed_at: row.completed_at ?? now };
  };
  if (!isTerminal(row.status)) {
    if (!o.job) {
      actions.push(
        { type: 'createSecret' },
        { type: 'createJob' },
        { type: 'event', eventType: 'Normal', reason: REASON.JobCreated, message: `Created Job ${jobName}` },
      );
    } else {
      const failure = jobFailure(o.job, o.pods);
      const stuck = failure ? undefined : podNotStarting(o.pods);
      if (failure) fail(failure.reason, failure.code);
      else if (stuck) {
        const waited = now.getTime() - stuck.since.getTime();
        if (waited >= opts.podStartTimeoutMs) {
          fail(
            `runner Pod did not start within ${Math.round(opts.podStartTimeoutMs / 1000)}s: ${stuck.reason}${stuck.message ? `: ${stuck.message}` : ''}`,
            'POD_NOT_STARTING',
          );
          // Nothing will run: stop the image pulls and scheduling attempts.
          actions.push({ type: 'deleteJob', why: 'its Pod never started' });
        } else {
          if (secretMissing(o.pods, o.jobId)) actions.push({ type: 'createSecret' });
          actions.push({ type: 'requeueAfter', ms: opts.podStartTimeoutMs - waited + 100 });
        }
      } else {
        const running = o.pods.find((p) => p.status?.phase === 'Running' && !p.metadata?.deletionTimestamp);
        if (running) {
          // The last sign of life: the run's latest report, or the Pod's start if it came after.
          const lastSign = Math.max(new Date(row.updated_at ?? 0).getTime(), new Date(running.status?.startTime ?? 0).getTime());
          const silent = now.getTime() - lastSign;
          if (silent >= opts.runnerStallMs) {
            const seconds = Math.round(opts.runnerStallMs / 1000);
            fail(`no progress for ${seconds} s: the runner stopped reporting (no progress or heartbeat) and was stopped`, 'RUNNER_STALLED');
            actions.push({ type: 'deleteJob', why: 'its runner stopped reporting' });
          } else {
            actions.push({ type: 'requeueAfter', ms: opts.runnerStallMs - silent + 100 });
          }
        }
      }
    }
  }

  // 5. A cancelled run whose Job still runs.
  if (row.status === 'cancelled' && o.job && !jobFinished(o.job) && !o.job.metadata?.deletionTimestamp)
    actions.push({ type: 'deleteJob', why: 'the run was cancelled' });

  // 6. Status, and an Event when the phase changes.
  const hadJob = Boolean(o.job) || !isTerminal(projected.status) || Boolean(ij.status?.jobName);
  const status = statusFor(projected, hadJob ? jobName : undefined, ij.status, jobFailedCondition(o.job), now);
  if (!sameStatus(ij.status, status)) actions.push({ type: 'patchStatus', status });
  const phase = PHASE[projected.status];
  if (phase !== ij.status?.phase && phase !== 'Pending') {
    actions.push({
      type: 'event',
      eventType: phase === 'Failed' ? 'Warning' : 'Normal',
      reason: phase,
      message: status.message ?? `${status.progress} images`,
    });
  }
  return actions;
}
