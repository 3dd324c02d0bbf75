// The runner -> callback service protocol: paths, the token's claims and every payload.
// All requests carry `Authorization: Bearer <CALLBACK_TOKEN>` and `X-Trace-ID`.
import { z } from 'zod';
import { JobKind } from './jobs.ts';

export const TOKEN_AUDIENCE = 'kinfer-callback';
export const TOKEN_ISSUER = 'kinfer-controller';
export const TOKEN_ALGORITHM = 'ES256';

/** Claims of a callback token: `sub` is the job id, `kind` the table it lives in. */
export const CallbackTokenClaims = z.object({
  sub: z.uuid(),
  kind: JobKind,
  aud: z.union([z.string(), z.array(z.string())]),
  iss: z.string(),
  exp: z.number(),
});
export type CallbackTokenClaims = z.infer<typeof CallbackTokenClaims>;

const KIND_SEGMENT: Record<JobKind, string> = { test_run: 'test-runs', inference_job: 'inference-jobs' };

export const callbackPaths = {
  /** Progress, for both kinds (seed path). */
  progress: (jobId: string) => `/api/v1/inference/${jobId}/progress`,
  /** Per-image results, in batches. */
  imageResults: (kind: JobKind, jobId: string) => `/api/v1/${KIND_SEGMENT[kind]}/${jobId}/image-results`,
  done: (kind: JobKind, jobId: string) => `/api/v1/${KIND_SEGMENT[kind]}/${jobId}/done`,
};

const count = z.number().int().nonnegative();

export const ProgressPayload = z.object({
  processed_images: count,
  total_images: count.nullable().optional(),
  failed_images: count.default(0),
  message: z.string().max(2000).optional(),
});
export type ProgressPayload = z.input<typeof ProgressPayload>;

export const ClassScore = z.object({
  class_id: z.number().int().nonnegative(),
  class_name: z.string(),
  confidence: z.number().min(0).max(1),
});
export type ClassScore = z.infer<typeof ClassScore>;

export const ImageTimings = z.object({
  /** Read + decode + resize + normalize. */
  preprocess_ms: z.number().nonnegative(),
  /** This image's share of its batch's `session.run`. */
  inference_ms: z.number().nonnegative(),
});

/**
 * One image's outcome. `predictions` is task-specific (classification: top-k scores, best first);
 * `error` is set, and the prediction fields are null, when the image could not be read or decoded.
 */
export const ImageResult = z.object({
  image_index: count,
  image_path: z.string(),
  predicted_class_id: z.number().int().nonnegative().nullable(),
  predicted_label: z.string().nullable(),
  confidence: z.number().min(0).max(1).nullable(),
  predictions: z.array(ClassScore).nullable(),
  /** Test runs only. */
  true_class_id: z.number().int().nonnegative().nullable().optional(),
  true_label: z.string().nullable().optional(),
  is_correct: z.boolean().nullable().optional(),
  timings: ImageTimings.nullable(),
  error: z.string().max(4000).nullable(),
});
export type ImageResult = z.infer<typeof ImageResult>;

export const ImageResultsBatch = z.object({ results: z.array(ImageResult).min(1).max(1000) });
export type ImageResultsBatch = z.infer<typeof ImageResultsBatch>;

export const PerClassMetric = z.object({
  class_id: z.number().int().nonnegative(),
  class_name: z.string(),
  precision: z.number(),
  recall: z.number(),
  f1: z.number(),
  support: count,
});
export type PerClassMetric = z.infer<typeof PerClassMetric>;

/** Evaluation output of a test run. Classification fills accuracy/top5/macro P-R-F1. */
export const EvaluationMetrics = z.object({
  overall_metrics: z.record(z.string(), z.number().nullable()),
  per_class_metrics: z.array(PerClassMetric),
  /** Rows = true class, columns = predicted class, in `class_names` order. */
  confusion_matrix: z.array(z.array(count)),
  class_names: z.array(z.string()),
  primary_metric_name: z.string(),
  primary_metric_value: z.number().nullable(),
});
export type EvaluationMetrics = z.infer<typeof EvaluationMetrics>;

export const JobTimings = z.object({
  total_ms: z.number().nonnegative(),
  model_load_ms: z.number().nonnegative(),
  preprocess_ms: z.number().nonnegative(),
  inference_ms: z.number().nonnegative(),
  images_per_second: z.number().nonnegative(),
  /** Peak resident memory of the runner process. */
  peak_rss_bytes: z.number().int().nonnegative().optional(),
});
export type JobTimings = z.infer<typeof JobTimings>;

const DoneCommon = {
  processed_images: count,
  total_images: count,
  failed_images: count,
  results_path: z.string().nullable(),
  timings: JobTimings.nullable(),
};

export const DonePayload = z.discriminatedUnion('status', [
  z.object({ status: z.literal('completed'), ...DoneCommon, metrics: EvaluationMetrics.nullable() }),
  z.object({ status: z.literal('failed'), ...DoneCommon, error_message: z.string().min(1).max(8000) }),
  /** The runner was told to stop (SIGTERM, or a callback answered that the job is no longer active). */
  z.object({ status: z.literal('cancelled'), ...DoneCommon, error_message: z.string().max(8000).nullable() }),
]);
export type DonePayload = z.infer<typeof DonePayload>;

/** What the callback service answers to every accepted call. */
export const CallbackReply = z.object({
  /** The job's status after the call; a terminal status tells the runner to stop. */
  status: z.string(),
  applied: z.boolean(),
});
export type CallbackReply = z.infer<typeof CallbackReply>;
