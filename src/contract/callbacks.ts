// The runner -> callback service protocol: paths, the token's claims and every payload.
// All requests carry `Authorization: Bearer <CALLBACK_TOKEN>` and `X-Trace-ID`.
import { z } from 'zod';
import { ErrorCodeField } from './job-errors.ts';
import { JobKind } from './jobs.ts';
import { XaiResult } from './xai.ts';
import { MAX_PARALLELISM } from './job-fields.ts';

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
  /** A shard of a sharded job finished its images (the job's own done follows from the last shard). */
  shardDone: (kind: JobKind, jobId: string, shard: number) => `/api/v1/${KIND_SEGMENT[kind]}/${jobId}/shards/${shard}/done`,
  /** GET: an inference job's input_config, for a runner started with INPUT_CONFIG_SOURCE=callback. */
  input: (jobId: string) => `/api/v1/inference-jobs/${jobId}/input`,
};

/** The largest count the database's int columns hold. */
export const MAX_COUNT = 2_147_483_647;
const count = z.number().int().nonnegative().max(MAX_COUNT);

interface Counts {
  processed_images: number;
  total_images?: number | null | undefined;
  failed_images?: number | undefined;
}

/** Counts that describe one possible state: failed <= processed <= total. */
function coherentCounts(c: Counts, ctx: z.RefinementCtx): void {
  // Only counts that are counts: a negative or fractional one already has its own issue.
  const valid = (n: unknown) => n === undefined || n === null || (Number.isInteger(n) && (n as number) >= 0);
  if (![c.processed_images, c.total_images, c.failed_images].every(valid)) return;
  if ((c.failed_images ?? 0) > c.processed_images) {
    ctx.addIssue({ code: 'custom', path: ['failed_images'], message: `${c.failed_images} failed images is more than the ${c.processed_images} processed` });
  }
  if (c.total_images !== null && c.total_images !== undefined && c.processed_images > c.total_images) {
    ctx.addIssue({ code: 'custom', path: ['processed_images'], message: `${c.processed_images} processed images is more than the total of ${c.total_images}` });
  }
}

/** Which shard of a sharded job reports (absent: the job has one shard). */
export const ShardRef = z
  .object({ index: count, count: z.number().int().min(1).max(MAX_PARALLELISM) })
  .refine((s) => s.index < s.count, { message: 'index must be below count', path: ['index'] });
export type ShardRef = z.infer<typeof ShardRef>;

/**
 * A shard's progress carries the shard's own processed and failed counts and the job's total;
 * the job's counts are the sums over its shards.
 */
export const ProgressPayload = z
  .object({
    processed_images: count,
    total_images: count.nullable().optional(),
    failed_images: count.default(0),
    message: z.string().max(2000).optional(),
    shard: ShardRef.optional(),
  })
  .superRefine(coherentCounts);
export type ProgressPayload = z.input<typeof ProgressPayload>;

/** A shard finished its images: `POST /api/v1/{kind}/{id}/shards/{index}/done`. */
export const ShardDonePayload = z
  .object({ processed_images: count, failed_images: count, count: z.number().int().min(1).max(MAX_PARALLELISM) })
  .superRefine(coherentCounts);
export type ShardDonePayload = z.infer<typeof ShardDonePayload>;

/** `last`: every shard has finished, and this one is to score the job and report it done. */
export const ShardDoneReply = z.object({ status: z.string(), applied: z.boolean(), last: z.boolean() });
export type ShardDoneReply = z.infer<typeof ShardDoneReply>;

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

/** [x1, y1, x2, y2] in the original image's pixels. */
export const Box = z.tuple([z.number(), z.number(), z.number(), z.number()]);
export type Box = z.infer<typeof Box>;

/** A binary mask as COCO compressed RLE (pycocotools' `counts` string), `size` = [height, width]. */
export const CompressedRle = z.object({
  size: z.tuple([z.number().int().nonnegative(), z.number().int().nonnegative()]),
  counts: z.string(),
});
export type CompressedRle = z.infer<typeof CompressedRle>;

/** One object found by a detection, instance segmentation or pose model. */
export const DetectedObject = z.object({
  class_id: z.number().int().nonnegative(),
  class_name: z.string(),
  /** The dataset's category id (COCO `category_id`); the class id when the dataset has none. */
  category_id: z.number().int(),
  confidence: z.number().min(0).max(1),
  bbox: Box,
  /** Instance segmentation: the mask in original pixels. */
  mask: CompressedRle.optional(),
  /** Pose: x, y, score for each keypoint, in original pixels. */
  keypoints: z.array(z.number()).optional(),
  /** Test runs: IoU (boxes, masks) or OKS (pose) with the ground truth it matched at 0.5, else null. */
  match_iou: z.number().nullable().optional(),
});
export type DetectedObject = z.infer<typeof DetectedObject>;

/** One labelled object of a test run's image, as the dataset gives it. */
export const GroundTruthObject = z.object({
  class_id: z.number().int().nonnegative(),
  class_name: z.string(),
  bbox: Box,
  iscrowd: z.boolean(),
  keypoints: z.array(z.number()).optional(),
});
export type GroundTruthObject = z.infer<typeof GroundTruthObject>;

/**
 * One image's outcome. `predictions` holds a classifier's top-k scores (best first); detection,
 * instance segmentation and pose fill `detections`, semantic segmentation `mask_path`.
 * `predicted_class_id`/`confidence` name the best class or object. `error` is set, and the
 * prediction fields are null, when the image could not be read or decoded.
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
  /** Objects found (detection, instance segmentation, pose), best first. */
  detections: z.array(DetectedObject).nullable().optional(),
  /** Test runs of object tasks: the labelled objects. */
  ground_truth: z.array(GroundTruthObject).nullable().optional(),
  /** Semantic segmentation: storage URI of the predicted class-id PNG (pixel value = class id). */
  mask_path: z.string().nullable().optional(),
  /**
   * Test runs: this image's own figures. Objects: tp, fp, fn at IoU (OKS) 0.5 among detections
   * with confidence >= 0.25, mean_iou of the matches; semantic: pixel_accuracy, mean_iou.
   */
  image_metrics: z.record(z.string(), z.number().nullable()).nullable().optional(),
  /** The dataset's image id (COCO `image_id`); the image index when the dataset has none. */
  image_id: z.number().int().nonnegative().optional(),
  /** Storage URI of the image drawn with its predictions. */
  visualization_path: z.string().nullable().optional(),
  /** The image's explanation; null when the job explains no image or leaves this one out. */
  xai: XaiResult.nullable().optional(),
  timings: ImageTimings.nullable(),
  error: z.string().max(4000).nullable(),
});
export type ImageResult = z.infer<typeof ImageResult>;

export const ImageResultsBatch = z.object({ results: z.array(ImageResult).min(1).max(1000) });
export type ImageResultsBatch = z.infer<typeof ImageResultsBatch>;

/**
 * Per class. precision/recall/f1: classification over images; objects at IoU 0.5 among
 * detections with confidence >= 0.25; semantic segmentation over pixels (f1 = Dice). null where
 * undefined (pycocotools' -1, an empty union). support: labelled images, objects or pixels.
 */
export const PerClassMetric = z.object({
  class_id: z.number().int().nonnegative(),
  class_name: z.string(),
  precision: z.number().nullable(),
  recall: z.number().nullable(),
  f1: z.number().nullable(),
  support: count,
  /** Objects: COCO AP@[.5:.95] and AP@.5 of this category (pycocotools). */
  ap: z.number().nullable().optional(),
  ap50: z.number().nullable().optional(),
  /** Objects: AP@.5 and AP@[.5:.95] of this class as `yolo val` computes them (Ultralytics' own metrics). */
  ultralytics_ap50: z.number().nullable().optional(),
  ultralytics_ap: z.number().nullable().optional(),
  /**
   * Objects: the precision-recall curve at IoU 0.5, pycocotools' precision at the 101 recall
   * thresholds 0, 0.01, ..., 1 (E.eval['precision'][0, :, k, 0, -1]); null without ground truth.
   */
  pr_curve: z.array(z.number().min(0).max(1)).max(101).nullable().optional(),
  /** Semantic segmentation: IoU of this class over the dataset. */
  iou: z.number().nullable().optional(),
});
export type PerClassMetric = z.infer<typeof PerClassMetric>;

/**
 * Evaluation output of a test run. Classification: accuracy, top5 accuracy, macro P/R/F1 and a
 * confusion matrix. Objects: pycocotools' summary under `bbox/`, `segm/` or `keypoints/` (mAP50-95,
 * mAP50, mAP75, ...), null where pycocotools prints -1; the confusion matrix is empty. Semantic
 * segmentation: mIoU, mAcc, pixel_accuracy.
 */
export const EvaluationMetrics = z.object({
  overall_metrics: z.record(z.string(), z.number().nullable()),
  per_class_metrics: z.array(PerClassMetric),
  /** Rows = true class, columns = predicted class, in `class_names` order. */
  confusion_matrix: z.array(z.array(count)),
  class_names: z.array(z.string()),
  /** As its varchar(64) column. */
  primary_metric_name: z.string().max(64),
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
  /** Scoring the job: reading every part back, the evaluation, images.jsonl (the last shard's). */
  scoring_ms: z.number().nonnegative().optional(),
});
export type JobTimings = z.infer<typeof JobTimings>;

const DoneCommon = {
  processed_images: count,
  total_images: count,
  failed_images: count,
  results_path: z.string().nullable(),
  timings: JobTimings.nullable(),
};

export const DonePayload = z
  .discriminatedUnion('status', [
    z.object({ status: z.literal('completed'), ...DoneCommon, metrics: EvaluationMetrics.nullable() }),
    /** `error_code`: one of JOB_ERROR_CODES (job-errors.ts); it becomes the InferenceJob's condition reason. */
    z.object({ status: z.literal('failed'), ...DoneCommon, error_message: z.string().min(1).max(8000), error_code: ErrorCodeField.optional() }),
    /** The runner was told to stop (SIGTERM, or a callback answered that the job is no longer active). */
    z.object({ status: z.literal('cancelled'), ...DoneCommon, error_message: z.string().max(8000).nullable(), error_code: ErrorCodeField.optional() }),
  ])
  .superRefine((done, ctx) => {
    coherentCounts(done, ctx);
    // A completed job has an outcome for every image it listed.
    if (done.status === 'completed' && done.processed_images !== done.total_images) {
      ctx.addIssue({
        code: 'custom',
        path: ['processed_images'],
        message: `a completed job processed every image: ${done.processed_images} processed of ${done.total_images}`,
      });
    }
  });
export type DonePayload = z.infer<typeof DonePayload>;

/** What the callback service answers to every accepted call. */
export const CallbackReply = z.object({
  /** The job's status after the call; a terminal status tells the runner to stop. */
  status: z.string(),
  applied: z.boolean(),
});
export type CallbackReply = z.infer<typeof CallbackReply>;
