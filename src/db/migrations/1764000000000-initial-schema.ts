// The first schema: four tables and the indexes the API's queries use.
import type { MigrationInterface, QueryRunner } from 'typeorm';

const STATUS_CHECK = `CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled'))`;

const JOB_COLUMNS = `
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name varchar(255),
  checkpoint_path text NOT NULL,
  task_type varchar(64) NOT NULL,
  status varchar(16) NOT NULL DEFAULT 'pending' ${STATUS_CHECK},
  progress_percent double precision NOT NULL DEFAULT 0,
  processed_images integer NOT NULL DEFAULT 0,
  total_images integer,
  failed_images integer NOT NULL DEFAULT 0,
  timings jsonb,
  results_path text,
  error_message text,
  enable_xai boolean NOT NULL DEFAULT false,
  xai_method varchar(64),
  xai_config jsonb,
  trace_id varchar(128) NOT NULL,
  executor varchar(32),
  executor_ref text,
  created_at timestamptz NOT NULL DEFAULT now(),
  started_at timestamptz,
  completed_at timestamptz,
  updated_at timestamptz NOT NULL DEFAULT now()`;

const IMAGE_COLUMNS = `
  id bigserial PRIMARY KEY,
  image_index integer NOT NULL,
  image_path text NOT NULL,
  predicted_class_id integer,
  predicted_label varchar(255),
  confidence double precision,
  predictions jsonb,
  preprocess_ms double precision,
  inference_ms double precision,
  error_message text,
  visualization_path text,
  xai_path text,
  created_at timestamptz NOT NULL DEFAULT now()`;

export class InitialSchema1764000000000 implements MigrationInterface {
  name = 'InitialSchema1764000000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE test_runs (${JOB_COLUMNS},
      training_job_id varchar(255),
      dataset_path text NOT NULL,
      dataset_split varchar(64) NOT NULL DEFAULT 'test',
      primary_metric_name varchar(64),
      primary_metric_value double precision,
      overall_metrics jsonb,
      per_class_metrics jsonb,
      confusion_matrix jsonb,
      class_names jsonb)`);
    await q.query(`CREATE INDEX ix_test_runs_status_created ON test_runs (status, created_at DESC)`);
    await q.query(`CREATE INDEX ix_test_runs_created ON test_runs (created_at DESC)`);
    await q.query(`CREATE INDEX ix_test_runs_training_job ON test_runs (training_job_id)`);

    await q.query(`CREATE TABLE inference_jobs (${JOB_COLUMNS},
      inference_type varchar(16) NOT NULL CHECK (inference_type IN ('single', 'batch', 'dataset')),
      input_config jsonb NOT NULL)`);
    await q.query(`CREATE INDEX ix_inference_jobs_status_created ON inference_jobs (status, created_at DESC)`);
    await q.query(`CREATE INDEX ix_inference_jobs_created ON inference_jobs (created_at DESC)`);

    await q.query(`CREATE TABLE test_image_results (${IMAGE_COLUMNS},
      test_run_id uuid NOT NULL REFERENCES test_runs (id) ON DELETE CASCADE,
      true_class_id integer,
      true_label varchar(255),
      is_correct boolean,
      CONSTRAINT uq_test_image_results_run_index UNIQUE (test_run_id, image_index))`);
    await q.query(`CREATE INDEX ix_test_image_results_run_correct ON test_image_results (test_run_id, is_correct)`);

    await q.query(`CREATE TABLE inference_results (${IMAGE_COLUMNS},
      inference_job_id uuid NOT NULL REFERENCES inference_jobs (id) ON DELETE CASCADE,
      CONSTRAINT uq_inference_results_job_index UNIQUE (inference_job_id, image_index))`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE inference_results');
    await q.query('DROP TABLE test_image_results');
    await q.query('DROP TABLE inference_jobs');
    await q.query('DROP TABLE test_runs');
  }
}
