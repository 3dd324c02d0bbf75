// Schema of `results.json`, the summary artifact every job writes. Per-image records are in
// `images.jsonl` beside it, one `ImageResult` a line.
import { z } from 'zod';
import { EvaluationMetrics, JobTimings } from './callbacks.ts';
import { InferenceType, JobKind, TaskType } from './jobs.ts';

export const RESULTS_SCHEMA_VERSION = 1;

export const ResultsFile = z.object({
  schema_version: z.literal(RESULTS_SCHEMA_VERSION),
  job_id: z.uuid(),
  kind: JobKind,
  inference_type: InferenceType,
  task_type: TaskType,
  checkpoint_path: z.string(),
  dataset_path: z.string().nullable(),
  split: z.string().nullable(),
  class_names: z.array(z.string()),
  total_images: z.number().int().nonnegative(),
  processed_images: z.number().int().nonnegative(),
  failed_images: z.number().int().nonnegative(),
  metrics: EvaluationMetrics.nullable(),
  timings: JobTimings,
  /** Storage URI of the per-image JSON Lines file. */
  images_path: z.string(),
  finished_at: z.iso.datetime(),
});
export type ResultsFile = z.infer<typeof ResultsFile>;
