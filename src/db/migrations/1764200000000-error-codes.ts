// Why a job ended, as a code (contract job-errors.ts) beside the message: it becomes the
// InferenceJob's condition reason.
import type { MigrationInterface, QueryRunner } from 'typeorm';

const TABLES = ['test_runs', 'inference_jobs'];

export class ErrorCodes1764200000000 implements MigrationInterface {
  name = 'ErrorCodes1764200000000';

  async up(q: QueryRunner): Promise<void> {
    for (const table of TABLES) await q.query(`ALTER TABLE ${table} ADD COLUMN error_code varchar(64)`);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const table of TABLES) await q.query(`ALTER TABLE ${table} DROP COLUMN error_code`);
  }
}
