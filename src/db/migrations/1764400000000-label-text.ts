// Class names come from a model's metadata and have no natural length: a 300-character name made
// every result of that model fail on varchar(255). Labels are text, as the class names they copy.
import type { MigrationInterface, QueryRunner } from 'typeorm';

const COLUMNS = [
  ['test_image_results', 'predicted_label'],
  ['test_image_results', 'true_label'],
  ['inference_results', 'predicted_label'],
] as const;

export class LabelText1764400000000 implements MigrationInterface {
  name = 'LabelText1764400000000';

  async up(q: QueryRunner): Promise<void> {
    for (const [table, column] of COLUMNS) await q.query(`ALTER TABLE ${table} ALTER COLUMN ${column} TYPE text`);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const [table, column] of COLUMNS) await q.query(`ALTER TABLE ${table} ALTER COLUMN ${column} TYPE varchar(255) USING left(${column}, 255)`);
  }
}
