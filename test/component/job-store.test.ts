// JobStore.get reads a job's row with a named prepared statement of its own (the controller reads
// it on every reconcile). TypeORM's findOneBy on the same entity is the reference: the same keys,
// values and types, every column set, on the real Postgres.
import type { EntitySchema } from 'typeorm';
import { InferenceJobEntity, TestRunEntity } from '../../src/db/entities.ts';
import type { Job } from '../../src/db/job-store.ts';
import { newTestRun, testDatabase, type TestDatabase } from '../support/in-process.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await testDatabase();
});
afterAll(async () => {
  await db?.stop();
});

/** Every nullable column of a job given a value, jsonb of several shapes, a fractional double. */
async function fillEveryColumn(table: string, id: string, extra: string): Promise<void> {
  await db.ds.query(
    `UPDATE ${table} SET name = 'n', status = 'failed', progress_percent = 37.5, processed_images = 3, total_images = 8,
       failed_images = 1, timings = '{"images_per_second": 2.5, "nested": {"a": [1, null, "x"]}}', results_path = 's3://r/',
       error_message = 'boom', error_code = 'RUNNER_ERROR', enable_xai = true, created_by = 'alice', namespace = 'ns',
       model_name = 'm', model_version = '2', xai_method = 'gradcam', xai_config = '{"layer": "conv"}', parallelism = 4,
       backoff_limit = 2, executor = 'kubernetes', executor_ref = 'ns/ij', started_at = now() - interval '1 minute',
       completed_at = now() ${extra} WHERE id = $1`,
    [id],
  );
}

const reference = (entity: EntitySchema<Job>, id: string) => db.ds.getRepository<Job>(entity).findOneBy({ id });

describe('JobStore.get', () => {
  it("returns a test run's row as TypeORM's findOneBy does, with every column set", async () => {
    const id = await newTestRun(db.store);
    await fillEveryColumn(
      'test_runs',
      id,
      `, training_job_id = 't', primary_metric_name = 'accuracy', primary_metric_value = 0.8125,
         overall_metrics = '{"accuracy": 0.8125}', per_class_metrics = '[{"class": "cat", "f1": 0.5}]',
         confusion_matrix = '[[1, 2], [3, 4]]', class_names = '["cat", "dog"]'`,
    );
    const row = await db.store.get('test_run', id);
    const expected = await reference(TestRunEntity as EntitySchema<Job>, id);
    expect(expected).not.toBeNull();
    expect(row).toEqual(expected);
    expect(Object.keys(row!).sort()).toEqual(Object.keys(expected!).sort());
    expect(Object.values(row!)).not.toContain(null);
    expect(row!.started_at).toBeInstanceOf(Date);
    expect(row!.timings).toEqual({ images_per_second: 2.5, nested: { a: [1, null, 'x'] } });
  });

  it("returns an inference job's row as findOneBy does", async () => {
    const job = await db.store.createInferenceJob({
      checkpoint_path: 's3://models/m.onnx',
      task_type: 'object_detection',
      inference_type: 'batch',
      input_config: { image_paths: ['s3://in/a.jpg'] },
      name: null,
      enable_xai: false,
      xai_method: null,
      xai_config: null,
    });
    await fillEveryColumn('inference_jobs', job.id, '');
    const row = await db.store.get('inference_job', job.id);
    expect(row).toEqual(await reference(InferenceJobEntity as EntitySchema<Job>, job.id));
    expect(row).toMatchObject({ input_config: { image_paths: ['s3://in/a.jpg'] }, parallelism: 4, progress_percent: 37.5 });
  });

  it('returns null for an id with no row, of either kind', async () => {
    const id = await newTestRun(db.store);
    expect(await db.store.get('inference_job', id)).toBeNull();
    expect(await db.store.get('test_run', '00000000-0000-4000-8000-000000000000')).toBeNull();
  });

  it('still reads rows on connections that prepared it once a migration adds a column', async () => {
    const id = await newTestRun(db.store);
    // Prepare the statement on every connection of the pool (poolSize 4), then change the table.
    await Promise.all(Array.from({ length: 8 }, () => db.store.get('test_run', id)));
    await db.ds.query('ALTER TABLE test_runs ADD COLUMN later_column int DEFAULT 7');
    try {
      const rows = await Promise.all(Array.from({ length: 8 }, () => db.store.get('test_run', id)));
      for (const row of rows) expect(row).toMatchObject({ id, status: 'pending' });
      expect(rows[0]).not.toHaveProperty('later_column');
    } finally {
      await db.ds.query('ALTER TABLE test_runs DROP COLUMN later_column');
    }
  });
});
