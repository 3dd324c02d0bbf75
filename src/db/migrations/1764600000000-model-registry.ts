// The model registry (issue 15): named, versioned ONNX models with a stage, and on every job the
// registry entry it was asked by (`model: "name@version"` or `"name:stage"`), resolved at submit.
import type { MigrationInterface, QueryRunner } from 'typeorm';

export class ModelRegistry1764600000000 implements MigrationInterface {
  name = 'ModelRegistry1764600000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE models (
        id uuid PRIMARY KEY,
        name varchar(128) NOT NULL,
        version varchar(64) NOT NULL,
        task_type varchar(64) NOT NULL,
        checkpoint_path text NOT NULL,
        metadata jsonb NOT NULL,
        stage varchar(16) NOT NULL DEFAULT 'none',
        tags jsonb NOT NULL DEFAULT '{}',
        metrics jsonb NOT NULL DEFAULT '{}',
        created_by varchar(255),
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (name, version)
      )`);
    for (const table of ['test_runs', 'inference_jobs'])
      await q.query(`ALTER TABLE ${table} ADD COLUMN model_name varchar(128), ADD COLUMN model_version varchar(64)`);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const table of ['test_runs', 'inference_jobs']) await q.query(`ALTER TABLE ${table} DROP COLUMN model_name, DROP COLUMN model_version`);
    await q.query('DROP TABLE models');
  }
}
