// Vocabulary shared by every process: what kinds of work exist and which states a job moves through.
import { z } from 'zod';

export const TASK_TYPES = ['image_classification', 'object_detection', 'instance_segmentation', 'semantic_segmentation', 'pose_estimation'] as const;
export const TaskType = z.enum(TASK_TYPES);
export type TaskType = z.infer<typeof TaskType>;

/** Tasks whose predictions are objects (boxes, with masks or keypoints), evaluated the COCO way. */
export const OBJECT_TASK_TYPES: readonly TaskType[] = ['object_detection', 'instance_segmentation', 'pose_estimation'];

/** `test_run` evaluates a labeled dataset; the other three are the input shapes of an inference job. */
export const INFERENCE_TYPES = ['test_run', 'single', 'batch', 'dataset'] as const;
export const InferenceType = z.enum(INFERENCE_TYPES);
export type InferenceType = z.infer<typeof InferenceType>;

/** The two tables a job can live in; the callback token names one of them. */
export const JobKind = z.enum(['test_run', 'inference_job']);
export type JobKind = z.infer<typeof JobKind>;

export const JOB_STATUSES = ['pending', 'running', 'completed', 'failed', 'cancelled'] as const;
export const JobStatus = z.enum(JOB_STATUSES);
export type JobStatus = z.infer<typeof JobStatus>;

export const TERMINAL_STATUSES: readonly JobStatus[] = ['completed', 'failed', 'cancelled'];

export function isTerminal(status: JobStatus): boolean {
  return TERMINAL_STATUSES.includes(status);
}

export function jobKindOf(inferenceType: InferenceType): JobKind {
  return inferenceType === 'test_run' ? 'test_run' : 'inference_job';
}

/** What a single/batch/dataset inference job reads. Exactly one shape per inference type. */
export const InputConfig = z.union([
  z.object({ image_path: z.string().min(1) }).strict(),
  z.object({ image_paths: z.array(z.string().min(1)).min(1).max(10_000) }).strict(),
  z.object({ dataset_path: z.string().min(1) }).strict(),
]);
export type InputConfig = z.infer<typeof InputConfig>;
