// Explanations per image (issue 12): one row per explained image in `xai_results`, the `xai`
// object of its result; `xai_path`, never written, goes.
import type { MigrationInterface, QueryRunner } from 'typeorm';

export class XaiResults1764300000000 implements MigrationInterface {
  name = 'XaiResults1764300000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE xai_results (
        job_id uuid NOT NULL,
        job_kind varchar(16) NOT NULL,
        image_index integer NOT NULL,
        method varchar(32) NOT NULL,
        xai jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (job_id, image_index)
      )`);
    for (const table of ['test_image_results', 'inference_results']) await q.query(`ALTER TABLE ${table} DROP COLUMN xai_path`);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const table of ['test_image_results', 'inference_results']) await q.query(`ALTER TABLE ${table} ADD COLUMN xai_path text`);
    await q.query('DROP TABLE xai_results');
  }
}
