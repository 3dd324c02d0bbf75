// Who may do what (issue 13): API tokens (stored hashed) and the owner of every job: the REST
// caller (`created_by`), or for a job applied with kubectl its namespace.
import type { MigrationInterface, QueryRunner } from 'typeorm';

export class Access1764500000000 implements MigrationInterface {
  name = 'Access1764500000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE api_tokens (
        id uuid PRIMARY KEY,
        name varchar(255) NOT NULL,
        owner varchar(255) NOT NULL,
        role varchar(16) NOT NULL,
        token_hash char(64) NOT NULL UNIQUE,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz,
        revoked_at timestamptz,
        last_used_at timestamptz
      )`);
    for (const table of ['test_runs', 'inference_jobs']) {
      await q.query(`ALTER TABLE ${table} ADD COLUMN created_by varchar(255), ADD COLUMN namespace varchar(63)`);
      await q.query(`CREATE INDEX ${table}_created_by ON ${table} (created_by, status)`);
    }
  }

  async down(q: QueryRunner): Promise<void> {
    for (const table of ['test_runs', 'inference_jobs']) await q.query(`ALTER TABLE ${table} DROP COLUMN created_by, DROP COLUMN namespace`);
    await q.query('DROP TABLE api_tokens');
  }
}
