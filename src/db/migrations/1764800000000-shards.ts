// Sharded and restartable jobs (issue 16): a job's `parallelism` (runners side by side, each one
// range of its images) and `backoff_limit` (restarts of a crashed runner), and one row per shard
// with its own counts; the job's counts are their sums, and it is scored once every shard is done.
import type { MigrationInterface, QueryRunner } from 'typeorm';

export class Shards1764800000000 implements MigrationInterface {
  name = 'Shards1764800000000';

  async up(q: QueryRunner): Promise<void> {
    for (const table of ['test_runs', 'inference_jobs']) {
      await q.query(`ALTER TABLE ${table} ADD COLUMN parallelism integer NOT NULL DEFAULT 1`);
      await q.query(`ALTER TABLE ${table} ADD COLUMN backoff_limit integer NOT NULL DEFAULT 0`);
    }
    await q.query(`
      CREATE TABLE job_shards (
        job_id uuid NOT NULL,
        shard integer NOT NULL,
        processed_images integer NOT NULL DEFAULT 0,
        failed_images integer NOT NULL DEFAULT 0,
        finished_at timestamptz,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (job_id, shard)
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE job_shards');
    for (const table of ['test_runs', 'inference_jobs']) {
      await q.query(`ALTER TABLE ${table} DROP COLUMN backoff_limit`);
      await q.query(`ALTER TABLE ${table} DROP COLUMN parallelism`);
    }
  }
}
