// Per-image results of every vision task: objects found, labelled objects, a semantic mask, the
// image's own figures and the dataset's image id (COCO exports need it).
import type { MigrationInterface, QueryRunner } from 'typeorm';

const TABLES = ['test_image_results', 'inference_results'];

export class ObjectResults1764100000000 implements MigrationInterface {
  name = 'ObjectResults1764100000000';

  async up(q: QueryRunner): Promise<void> {
    for (const table of TABLES) {
      await q.query(`ALTER TABLE ${table}
        ADD COLUMN image_id integer,
        ADD COLUMN detections jsonb,
        ADD COLUMN mask_path text,
        ADD COLUMN image_metrics jsonb`);
    }
    await q.query(`ALTER TABLE test_image_results ADD COLUMN ground_truth jsonb`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE test_image_results DROP COLUMN ground_truth`);
    for (const table of TABLES) {
      await q.query(`ALTER TABLE ${table} DROP COLUMN image_id, DROP COLUMN detections, DROP COLUMN mask_path, DROP COLUMN image_metrics`);
    }
  }
}
