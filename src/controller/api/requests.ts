// What a client may send to the REST API. Job requests are made of the contract's job fields (the
// same the InferenceJob spec is made of), so both doors refuse the same values with the same
// words; rules across fields and against storage are the admission's (../admission/).
import { z } from 'zod';
import {
  BackoffLimit,
  DatasetSplit,
  ImagePaths,
  JobName,
  JobStatus,
  ModelRefField,
  Parallelism,
  StorageUriField,
  TaskType,
  TrainingJobId,
  XaiConfigFields,
  XaiMethod,
} from '../../contract/index.ts';

/** How a job runs: shards side by side, and restarts of a crashed runner. */
const runFields = {
  parallelism: Parallelism.default(1),
  backoff_limit: BackoffLimit.default(0),
};

const xaiFields = {
  enable_xai: z.boolean().default(false),
  xai_method: XaiMethod.optional(),
  xai_config: z.object(XaiConfigFields).strict().optional(),
};

export const CreateTestRun = z
  .object({
    checkpoint_path: StorageUriField.optional(),
    /** A registered model instead of a checkpoint_path (exactly one: the admission's rule). */
    model: ModelRefField.optional(),
    dataset_path: StorageUriField,
    dataset_split: DatasetSplit.default('test'),
    task_type: TaskType,
    training_job_id: TrainingJobId.optional(),
    name: JobName.optional(),
    ...runFields,
    ...xaiFields,
  })
  .strict();
export type CreateTestRun = z.output<typeof CreateTestRun>;

export const CreateInferenceJob = z
  .object({
    checkpoint_path: StorageUriField.optional(),
    model: ModelRefField.optional(),
    task_type: TaskType,
    inference_type: z.enum(['single', 'batch', 'dataset']),
    /** Exactly one of the three, the one `inference_type` names (checked by the admission). */
    input_config: z.object({ image_path: StorageUriField.optional(), image_paths: ImagePaths.optional(), dataset_path: StorageUriField.optional() }).strict(),
    name: JobName.optional(),
    ...runFields,
    ...xaiFields,
  })
  .strict();
export type CreateInferenceJob = z.output<typeof CreateInferenceJob>;

/**
 * A whole number in a query string. Coerced, 'abc' or a parameter given twice was refused as
 * "expected number, received NaN" and '1e3' taken as 1000: the refusal now says what is wanted and
 * what came. Described to OpenAPI as the integer it is.
 */
function queryInteger(min: number, max: number, fallback: number) {
  const wanted = `a whole number from ${min} to ${max}`;
  return z
    .string({ error: `${wanted}, given once` })
    .meta({ type: 'integer', minimum: min, maximum: max, default: fallback })
    .refine((v) => /^\d{1,10}$/.test(v) && Number(v) >= min && Number(v) <= max, { error: (issue) => `${wanted}, not ${JSON.stringify(issue.input)}` })
    .transform(Number)
    .default(fallback);
}

const skipLimit = {
  skip: queryInteger(0, 2_147_483_647, 0),
  limit: queryInteger(1, 1000, 100),
};

export const ListQuery = z.object({
  ...skipLimit,
  status: JobStatus.optional(),
  task_type: TaskType.optional(),
  /** Part of the checkpoint path or the registered model's name. */
  model: z.string().min(1).max(1024).optional(),
  /** Created at or after / before (ISO 8601). */
  since: z.iso.datetime({ offset: true }).optional(),
  until: z.iso.datetime({ offset: true }).optional(),
});

/** Two to eight test runs, comma-separated; the images they disagree on are paged. */
export const CompareQuery = z
  .object({
    ids: z
      .string()
      .transform((s) => s.split(',').map((x) => x.trim()))
      .pipe(
        z
          .array(z.string().min(1))
          .min(2, 'name at least two test runs')
          .max(8, 'at most eight test runs')
          .refine((ids) => new Set(ids).size === ids.length, 'names a test run twice: name at least two different ones'),
      ),
    ...skipLimit,
  })
  .strict();

export const ImagesQuery = z.object({
  ...skipLimit,
  filter_correct: z
    .enum(['true', 'false'])
    .transform((v) => v === 'true')
    .optional(),
  /** One cell of the confusion matrix: the images of this true class predicted as that one. */
  true_label: z.string().min(1).max(256).optional(),
  predicted_label: z.string().min(1).max(256).optional(),
});

export const PageQuery = z.object(skipLimit);

/** POST /validate: a request of either kind, checked as a submit would, nothing created. */
export const ValidateRequest = z.object({ kind: z.enum(['test_run', 'inference_job']), request: z.record(z.string(), z.unknown()) }).strict();
