// Why a job ended other than completed, as a code every process shares: the runner reports its
// own (in `done`), the controller and the callback service record theirs, Postgres keeps it
// (`error_code`), and the Kubernetes controller turns it into the InferenceJob's condition reason
// (MODEL_METADATA_INVALID -> ModelMetadataInvalid), so `kubectl get` and alerts can tell a bad
// model from an evicted pod without parsing messages.
import { z } from 'zod';

export const JOB_ERROR_CODES = {
  // Reported by the runner.
  RUNNER_CONFIG_INVALID: 'The runner environment does not satisfy the contract.',
  MODEL_NOT_ONNX: 'The checkpoint is not an ONNX model.',
  MODEL_LOAD_FAILED: 'ONNX Runtime could not load the model.',
  MODEL_METADATA_INVALID: 'The model cannot serve the task (outputs, classes, input size, metadata).',
  DATASET_INVALID: 'The dataset is missing, empty or does not match the model.',
  TOO_MANY_IMAGES: 'The job has more images than one job may have here (KINFER_MAX_IMAGES_PER_JOB).',
  OBJECT_NOT_FOUND: 'A model, dataset file or image the job needs is not in storage.',
  INVALID_STORAGE_URI: 'A storage location is malformed.',
  TERMINATED: 'The runner was stopped by a signal (cancelled, past its deadline, evicted, shut down).',
  CALLBACK_UNREACHABLE: 'The callback service did not accept reports for longer than the runner retries (CALLBACK_RETRY_SECONDS).',
  RUNNER_ERROR: 'Any other error inside the runner (its message says what).',
  // Recorded by the controller for runners that could not report.
  RUNNER_EXITED: 'The runner process ended without reporting (subprocess tier).',
  RUNNER_LOST: 'The controller restarted and the runner was gone (subprocess tier).',
  RUNNER_NOT_STARTED: 'The runner could not be started.',
  RUNNER_STALLED: 'The runner stopped reporting (no progress or heartbeat for KINFER_RUNNER_STALL_SECONDS) and was stopped.',
  POD_NOT_STARTING: 'The runner Pod did not start in time (image pull, scheduling, configuration).',
  BACKOFF_LIMIT_EXCEEDED: 'The runner Job failed: its Pods failed more often than backoffLimit allows.',
  DEADLINE_EXCEEDED: 'The runner Job ran longer than activeDeadlineSeconds.',
  JOB_FAILED: 'The runner Job failed for another reason (its condition says which).',
  JOB_SUCCEEDED_WITHOUT_REPORT: 'The runner Job succeeded but the runner never reported completion.',
  EXECUTOR_UNAVAILABLE: 'The job could not be handed to the tier that runs jobs.',
  // Cancellations.
  CANCELLED_BY_USER: 'Cancelled through the API.',
  INFERENCE_JOB_DELETED: 'Its InferenceJob was deleted.',
} as const;

export type JobErrorCode = keyof typeof JOB_ERROR_CODES;

/** A code on the wire: upper snake case, so that one written by a newer runner still fits. */
export const ErrorCodeField = z.string().regex(/^[A-Z][A-Z0-9_]{0,63}$/, 'must be an UPPER_SNAKE_CASE code');

/** The condition reason (CamelCase, as Kubernetes wants reasons) of an error code. */
export function conditionReasonOf(code: string): string {
  return code
    .toLowerCase()
    .split('_')
    .filter(Boolean)
    .map((w) => w[0]!.toUpperCase() + w.slice(1))
    .join('');
}

/** The code an error carries (`err.code` when it is one of ours), else RUNNER_ERROR. */
export function errorCodeOf(err: unknown): JobErrorCode {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code in JOB_ERROR_CODES ? (code as JobErrorCode) : 'RUNNER_ERROR';
}
