// How the predictor serves a model (issue 15): per version, its dynamic batching (`serving`:
// max_batch_size, max_queue_delay_ms); per name, the traffic split over versions, optionally
// sticky per caller (the value of a request header).
import type { MigrationInterface, QueryRunner } from 'typeorm';

export class ModelServing1764700000000 implements MigrationInterface {
  name = 'ModelServing1764700000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE models ADD COLUMN serving jsonb NOT NULL DEFAULT '{}'`);
    await q.query(`
      CREATE TABLE model_traffic (
        name varchar(128) PRIMARY KEY,
        split jsonb NOT NULL,
        sticky_header varchar(128),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE model_traffic');
    await q.query('ALTER TABLE models DROP COLUMN serving');
  }
}
