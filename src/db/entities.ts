// The four tables, as TypeORM entity schemas (no decorators: sources run under Node's type
// stripping). Property names are the column names, which are also the REST API's field names.
import { EntitySchema } from 'typeorm';
import type {
  ClassScore,
  DetectedObject,
  EvaluationMetrics,
  GroundTruthObject,
  InferenceType,
  InputConfig,
  JobStatus,
  JobTimings,
  TaskType,
  XaiMethod,
  XaiResult,
} from '../contract/index.ts';

interface JobColumns {
  id: string;
  name: string | null;
  checkpoint_path: string;
  task_type: TaskType;
  status: JobStatus;
  progress_percent: number;
  processed_images: number;
  total_images: number | null;
  failed_images: number;
  timings: JobTimings | null;
  results_path: string | null;
  error_message: string | null;
  /** Why it ended other than completed: a JOB_ERROR_CODES key (contract). */
  error_code: string | null;
  enable_xai: boolean;
  /** Who submitted it through the REST API (a user or token owner); null for kubectl and older jobs. */
  created_by: string | null;
  /** The namespace of the InferenceJob it came from (kubectl door), else null. */
  namespace: string | null;
  /** The registry entry it was asked by (`model`), resolved to checkpoint_path at submit. */
  model_name: string | null;
  model_version: string | null;
  xai_method: XaiMethod | null;
  xai_config: Record<string, unknown> | null;
  /** Shards run side by side (1: one runner). */
  parallelism: number;
  /** Restarts of a crashed runner (per shard in the subprocess tier; the Job's backoffLimit in Kubernetes). */
  backoff_limit: number;
  trace_id: string;
  /** Which executor runs it ('subprocess', 'kubernetes') and its handle there (pid, Job name). */
  executor: string | null;
  executor_ref: string | null;
  created_at: Date;
  started_at: Date | null;
  completed_at: Date | null;
  updated_at: Date;
}

export interface TestRun extends JobColumns {
  training_job_id: string | null;
  dataset_path: string;
  dataset_split: string;
  primary_metric_name: string | null;
  primary_metric_value: number | null;
  overall_metrics: EvaluationMetrics['overall_metrics'] | null;
  per_class_metrics: EvaluationMetrics['per_class_metrics'] | null;
  confusion_matrix: number[][] | null;
  class_names: string[] | null;
}

export interface InferenceJob extends JobColumns {
  inference_type: Exclude<InferenceType, 'test_run'>;
  input_config: InputConfig;
}

interface ImageColumns {
  id: string;
  image_index: number;
  image_path: string;
  predicted_class_id: number | null;
  predicted_label: string | null;
  confidence: number | null;
  predictions: ClassScore[] | null;
  image_id: number | null;
  detections: DetectedObject[] | null;
  mask_path: string | null;
  image_metrics: Record<string, number | null> | null;
  preprocess_ms: number | null;
  inference_ms: number | null;
  error_message: string | null;
  visualization_path: string | null;
  /** From xai_results (not a column of the images table): the image's explanation, or null. */
  xai?: XaiResult | null;
  created_at: Date;
}

export interface TestImageResult extends ImageColumns {
  test_run_id: string;
  true_class_id: number | null;
  true_label: string | null;
  is_correct: boolean | null;
  ground_truth: GroundTruthObject[] | null;
}

export interface InferenceResult extends ImageColumns {
  inference_job_id: string;
}

const jobColumns = {
  // Ids are minted by the controller (crypto.randomUUID), so TypeORM needs no uuid extension.
  id: { type: 'uuid', primary: true },
  name: { type: 'varchar', length: 255, nullable: true },
  checkpoint_path: { type: 'text' },
  task_type: { type: 'varchar', length: 64 },
  status: { type: 'varchar', length: 16, default: 'pending' },
  progress_percent: { type: 'double precision', default: 0 },
  processed_images: { type: 'int', default: 0 },
  total_images: { type: 'int', nullable: true },
  failed_images: { type: 'int', default: 0 },
  timings: { type: 'jsonb', nullable: true },
  results_path: { type: 'text', nullable: true },
  error_message: { type: 'text', nullable: true },
  error_code: { type: 'varchar', length: 64, nullable: true },
  enable_xai: { type: 'boolean', default: false },
  created_by: { type: 'varchar', length: 255, nullable: true },
  namespace: { type: 'varchar', length: 63, nullable: true },
  model_name: { type: 'varchar', length: 128, nullable: true },
  model_version: { type: 'varchar', length: 64, nullable: true },
  xai_method: { type: 'varchar', length: 64, nullable: true },
  xai_config: { type: 'jsonb', nullable: true },
  parallelism: { type: 'int', default: 1 },
  backoff_limit: { type: 'int', default: 0 },
  trace_id: { type: 'varchar', length: 128 },
  executor: { type: 'varchar', length: 32, nullable: true },
  executor_ref: { type: 'text', nullable: true },
  created_at: { type: 'timestamptz', createDate: true },
  started_at: { type: 'timestamptz', nullable: true },
  completed_at: { type: 'timestamptz', nullable: true },
  updated_at: { type: 'timestamptz', updateDate: true },
} as const;

const imageColumns = {
  id: { type: 'bigint', primary: true, generated: 'increment' },
  image_index: { type: 'int' },
  image_path: { type: 'text' },
  predicted_class_id: { type: 'int', nullable: true },
  predicted_label: { type: 'text', nullable: true },
  confidence: { type: 'double precision', nullable: true },
  predictions: { type: 'jsonb', nullable: true },
  image_id: { type: 'int', nullable: true },
  detections: { type: 'jsonb', nullable: true },
  mask_path: { type: 'text', nullable: true },
  image_metrics: { type: 'jsonb', nullable: true },
  preprocess_ms: { type: 'double precision', nullable: true },
  inference_ms: { type: 'double precision', nullable: true },
  error_message: { type: 'text', nullable: true },
  visualization_path: { type: 'text', nullable: true },
  created_at: { type: 'timestamptz', createDate: true },
} as const;

export const TestRunEntity = new EntitySchema<TestRun>({
  name: 'TestRun',
  tableName: 'test_runs',
  columns: {
    ...jobColumns,
    training_job_id: { type: 'varchar', length: 255, nullable: true },
    dataset_path: { type: 'text' },
    dataset_split: { type: 'varchar', length: 64, default: 'test' },
    primary_metric_name: { type: 'varchar', length: 64, nullable: true },
    primary_metric_value: { type: 'double precision', nullable: true },
    overall_metrics: { type: 'jsonb', nullable: true },
    per_class_metrics: { type: 'jsonb', nullable: true },
    confusion_matrix: { type: 'jsonb', nullable: true },
    class_names: { type: 'jsonb', nullable: true },
  },
});

export const InferenceJobEntity = new EntitySchema<InferenceJob>({
  name: 'InferenceJob',
  tableName: 'inference_jobs',
  columns: {
    ...jobColumns,
    inference_type: { type: 'varchar', length: 16 },
    input_config: { type: 'jsonb' },
  },
});

export const TestImageResultEntity = new EntitySchema<TestImageResult>({
  name: 'TestImageResult',
  tableName: 'test_image_results',
  columns: {
    ...imageColumns,
    test_run_id: { type: 'uuid' },
    true_class_id: { type: 'int', nullable: true },
    true_label: { type: 'text', nullable: true },
    is_correct: { type: 'boolean', nullable: true },
    ground_truth: { type: 'jsonb', nullable: true },
  },
});

export const InferenceResultEntity = new EntitySchema<InferenceResult>({
  name: 'InferenceResult',
  tableName: 'inference_results',
  columns: { ...imageColumns, inference_job_id: { type: 'uuid' } },
});

export const ENTITIES = [TestRunEntity, InferenceJobEntity, TestImageResultEntity, InferenceResultEntity];
