// Sharded and resumed jobs on the real stack (subprocess tier: kinfer serve's controller spawning
// runner processes, real Postgres and S3). The reference for every figure is the same job run as
// one uninterrupted shard: metrics must be identical (not close), and the per-image rows exactly
// the dataset's images, none missing, none twice, whatever was killed on the way.
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { RUNNER_PROCESS_ENV } from '../../src/contract/index.ts';
import { buildColorClassifier } from '../../src/samples/color-classifier.ts';
import { buildColorDataset } from '../../src/samples/color-dataset.ts';
import { buildShapeDataset } from '../../src/samples/shape-datasets.ts';
import { buildShapeModel } from '../../src/samples/shape-models.ts';
import { eventually } from '../support/local-cluster.ts';
import { inSlowMotion, pidsWithEnv, shardPartWay } from '../support/processes.ts';
import { outcome, startTestStack, upload, type TestStack } from '../support/test-stack.ts';

const IMAGES = 480;
let stack: TestStack;
let checkpoint: string;
let dataset: string;
let reference: any;

beforeAll(async () => {
  stack = await startTestStack({ KINFER_RUNNER_BATCH_SIZE: '4', KINFER_MAX_CONCURRENT_RUNNERS: '4' });
  checkpoint = `${stack.s3Prefix}/models/colors.onnx`;
  await stack.store.write(checkpoint, Buffer.from(buildColorClassifier().model));
  dataset = `${stack.s3Prefix}/datasets/colors`;
  // A few unreadable files too: their error rows are part of "exactly the dataset".
  const files = await buildColorDataset({ perClass: IMAGES / 6, seed: 11 });
  files.splice(3, 1, { ...files[3]!, bytes: Buffer.from('not an image') });
  await upload(stack.store, dataset, files);
  reference = await finished(await submit({}));
  expect(outcome(reference)).toEqual({ status: 'completed', error_message: null });
  expect(reference).toMatchObject({ processed_images: IMAGES, total_images: IMAGES, failed_images: 1, parallelism: 1 });
}, 180_000);

afterAll(async () => {
  await stack?.stop();
});

async function submit(
  extra: Record<string, unknown>,
  body: Record<string, unknown> = { checkpoint_path: checkpoint, dataset_path: dataset, task_type: 'image_classification' },
): Promise<string> {
  const created = await stack.api('POST', '/test-runs', { ...body, ...extra });
  expect(created.status).toBe(201);
  return created.body.id as string;
}

const finished = (id: string) => stack.waitFor('test-runs', id, undefined, 240_000);

/** Per image index: its path and what was predicted (or the error); a duplicate row would show. */
async function rowsOf(id: string): Promise<Array<{ image_index: number; image_path: string; predicted_class_id: number | null; error: boolean }>> {
  const { rows } = await stack.db.query(
    'SELECT image_index, image_path, predicted_class_id, error_message IS NOT NULL AS error FROM test_image_results WHERE test_run_id = $1 ORDER BY image_index, id',
    [id],
  );
  return rows;
}

const metricsOf = (run: any) => ({
  overall_metrics: run.overall_metrics,
  per_class_metrics: run.per_class_metrics,
  confusion_matrix: run.confusion_matrix,
  primary_metric_value: run.primary_metric_value,
  counts: [run.processed_images, run.failed_images, run.total_images],
});

/** What the job left in storage: images.jsonl's image indexes, and its parts. */
const artifactsRoot = (id: string) => `${stack.s3Prefix}/artifacts/test-runs/${id}`;

async function partsOf(id: string): Promise<string[]> {
  const parts: string[] = [];
  for await (const uri of stack.store.list(`${artifactsRoot(id)}/parts`)) parts.push(uri);
  return parts;
}

async function artifactsOf(id: string): Promise<{ lines: number[]; parts: string[] }> {
  const text = (await stack.store.read(`${artifactsRoot(id)}/images.jsonl`)).toString('utf8');
  const parts = await partsOf(id);
  return {
    lines: text
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { image_index: number }).image_index),
    parts,
  };
}

/** How many of its images shard `shard` of a 4-shard run has in parts (shardRange: IMAGES / 4 each, in order). */
// Counted here, not with the runner's committedIn: the count is what its resume log is checked against.
async function imagesInParts(id: string, shard: number): Promise<number> {
  const [from, to] = [(shard * IMAGES) / 4, ((shard + 1) * IMAGES) / 4];
  let images = 0;
  for (const uri of await partsOf(id)) {
    // A part is named by its first image's index.
    const first = Number(basename(uri, '.ndjson'));
    if (first >= from && first < to) images += (await stack.store.read(uri)).toString('utf8').trim().split('\n').length;
  }
  return images;
}

describe('sharded test runs (subprocess tier)', () => {
  it('an 8-shard run has per-image rows exactly the dataset, images.jsonl in order, and metrics identical to the one-shard run', async () => {
    const run = await finished(await submit({ parallelism: 8 }));
    expect(outcome(run)).toEqual({ status: 'completed', error_message: null });
    expect(metricsOf(run)).toEqual(metricsOf(reference));
    expect(await rowsOf(run.id)).toEqual(await rowsOf(reference.id));
    expect(run.parallelism).toBe(8);
    // Each shard's own counts; the job's are their sums.
    expect(run.shards).toHaveLength(8);
    expect(run.shards.every((s: any) => s.finished)).toBe(true);
    expect(run.shards.reduce((n: number, s: any) => n + s.processed_images, 0)).toBe(IMAGES);
    const sizes = run.shards.map((s: any) => s.processed_images);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
    expect((await artifactsOf(run.id)).lines).toEqual(Array.from({ length: IMAGES }, (_, i) => i));
    // The runner that reported the job removes the parts right after.
    await eventually('the parts removed', async () => ((await artifactsOf(run.id)).parts.length === 0 ? true : undefined));
  }, 240_000);

  it('more shards than images: the shards left without an image finish too, and the run equals the one-shard run', async () => {
    const few = `${stack.s3Prefix}/datasets/few-colors`;
    // Six images (one a class) for eight shards: shardRange gives two of them nothing.
    await upload(stack.store, few, await buildColorDataset({ perClass: 1, seed: 5 }));
    const body = { checkpoint_path: checkpoint, dataset_path: few, task_type: 'image_classification' };
    const [one, eight] = [await finished(await submit({}, body)), await finished(await submit({ parallelism: 8 }, body))];
    expect(outcome(one)).toEqual({ status: 'completed', error_message: null });
    expect(outcome(eight)).toEqual({ status: 'completed', error_message: null });
    expect(metricsOf(eight)).toEqual(metricsOf(one));
    expect(metricsOf(one).counts).toEqual([6, 0, 6]);
    expect(await rowsOf(eight.id)).toEqual(await rowsOf(one.id));
    expect(eight.shards).toHaveLength(8);
    expect(eight.shards.every((s: any) => s.finished)).toBe(true);
    expect(eight.shards.map((s: any) => s.processed_images).sort((a: number, b: number) => a - b)).toEqual([0, 0, 1, 1, 1, 1, 1, 1]);
    expect((await artifactsOf(eight.id)).lines).toEqual([0, 1, 2, 3, 4, 5]);
  }, 240_000);

  it("a shard's runner killed mid-run is started again, resumes after its committed images, and the run ends as if nothing happened", async () => {
    const id = await submit({ parallelism: 4, backoff_limit: 2 });
    // A shard that has committed some of its images but not all. A shard can go from its first
    // report to its last image between two polls of runners that run freely (seen in CI), so the
    // job's runners run in slow motion (30 ms at a time, then stopped) and the shards are read
    // while all of them are stopped: none finishes between the reading and the kill.
    // Its images in storage are what a runner started again counts; they must leave it some to do.
    const { found: victim, resume } = await shardPartWay(stack.db, id, 'SHARD_INDEX', {
      timeoutMs: 120_000,
      leftToWrite: async (shard) => (await imagesInParts(id, shard)) < IMAGES / 4,
    });
    resume([victim.pid]);
    const { rows } = await stack.db.query('SELECT processed_images, finished_at FROM job_shards WHERE job_id = $1 AND shard = $2', [id, victim.shard]);
    expect(rows[0].finished_at).toBeNull();
    const committedBefore = await imagesInParts(id, victim.shard);
    expect(committedBefore).toBeGreaterThanOrEqual(rows[0].processed_images);
    expect(committedBefore).toBeLessThan(IMAGES / 4);
    // The subprocess tier starts runners with the runner's process environment (malloc's settings).
    const environ = readFileSync(`/proc/${victim.pid}/environ`, 'utf8').split('\0');
    expect(environ).toEqual(expect.arrayContaining(Object.entries(RUNNER_PROCESS_ENV).map(([k, v]) => `${k}=${v}`)));
    process.kill(victim.pid, 'SIGKILL');

    const run = await finished(id);
    expect(outcome(run)).toEqual({ status: 'completed', error_message: null });
    expect(metricsOf(run)).toEqual(metricsOf(reference));
    expect(await rowsOf(id)).toEqual(await rowsOf(reference.id));
    expect((await artifactsOf(id)).lines).toEqual(Array.from({ length: IMAGES }, (_, i) => i));
    // The second runner of that shard went on from what the first committed.
    const log = readFileSync(join(stack.home, 'logs', `${id}-shard-${victim.shard}.log`), 'utf8');
    const resumed = log
      .split('\n')
      .filter((l) => l.includes('resuming after the images already committed'))
      .map((l) => JSON.parse(l) as { committed_images: number });
    expect(resumed).toHaveLength(1);
    expect(resumed[0]!.committed_images).toBe(committedBefore);
  }, 240_000);

  it('a runner of an unsharded job killed mid-run resumes too; without a backoff limit the same kill fails the job with why', async () => {
    const id = await submit({ backoff_limit: 1 });
    // Part-way through, read while it is stopped (slow motion, as above): it cannot finish before the kill.
    const { found: pid } = await inSlowMotion(
      () => pidsWithEnv('JOB_ID', id),
      async () => {
        const { rows } = await stack.db.query('SELECT executor_ref, processed_images FROM test_runs WHERE id = $1', [id]);
        if (!rows[0]?.executor_ref || rows[0].processed_images === 0 || rows[0].processed_images >= IMAGES) return undefined;
        return Number(/^pid:(\d+)/.exec(rows[0].executor_ref)![1]);
      },
      { what: 'the runner part-way through', runMs: 30, timeoutMs: 120_000 },
    );
    process.kill(pid, 'SIGKILL');
    const run = await finished(id);
    expect(outcome(run)).toEqual({ status: 'completed', error_message: null });
    expect(metricsOf(run)).toEqual(metricsOf(reference));
    expect(await rowsOf(id)).toEqual(await rowsOf(reference.id));

    const doomed = await submit({});
    const doomedPid = await eventually('running', async () => {
      const { rows } = await stack.db.query('SELECT executor_ref FROM test_runs WHERE id = $1', [doomed]);
      return rows[0]?.executor_ref ? Number(/^pid:(\d+)/.exec(rows[0].executor_ref)![1]) : undefined;
    });
    process.kill(doomedPid, 'SIGKILL');
    const failed = await finished(doomed);
    expect(failed).toMatchObject({ status: 'failed', error_code: 'RUNNER_EXITED' });
    expect(failed.error_message).toMatch(/killed by SIGKILL/);
  }, 240_000);

  it("a sharded object-detection run scores every shard's detections with pycocotools' evaluation: identical to one shard", async () => {
    const root = `${stack.s3Prefix}/shapes`;
    const data = await buildShapeDataset('detect', { images: 24 });
    await upload(stack.store, `${root}/data`, data.files);
    await stack.store.write(`${root}/model.onnx`, Buffer.from(buildShapeModel('detect')));
    const body = { checkpoint_path: `${root}/model.onnx`, dataset_path: `${root}/data`, dataset_split: 'val', task_type: 'object_detection' };
    const [one, three] = [await finished(await submit({}, body)), await finished(await submit({ parallelism: 3 }, body))];
    expect(outcome(one)).toEqual({ status: 'completed', error_message: null });
    expect(outcome(three)).toEqual({ status: 'completed', error_message: null });
    expect(one.overall_metrics['bbox/mAP50-95']).toBeGreaterThan(0);
    expect(metricsOf(three)).toEqual(metricsOf(one));
  }, 240_000);
});
