// A batch split over ONNX Runtime sessions of their own (SESSIONS, src/runner/inference/
// session-split.ts) gives every image the result it gets from one session, and the job the same
// metrics: each task's sample test run (the runner's runJob, in this process; real models, images
// and ONNX Runtime), batches of 5 over 1, 2 and 3 sessions, so that parts are uneven ([2, 2, 1]),
// a last batch is smaller than the sessions are many, and a corrupt image sits inside a batch.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseRunnerEnv, type ImageResult } from '../../src/contract/index.ts';
import { WorkerSession } from '../../src/runner/inference/inference-session.ts';
import { ObjectStore } from '../../src/runner/io/object-store.ts';
import { runJob } from '../../src/runner/job.ts';
import { writeSamples } from '../../src/samples/write-samples.ts';
import { capturedLog } from '../support/captured-log.ts';

let root: string;

// Runs each session was handed in the job under way: counted on the real sessions.
const runsBy = new Map<WorkerSession, number>();
const run = WorkerSession.prototype.run;
beforeAll(() => {
  WorkerSession.prototype.run = function (this: WorkerSession, ...args: Parameters<WorkerSession['run']>) {
    runsBy.set(this, (runsBy.get(this) ?? 0) + 1);
    return run.apply(this, args);
  };
});
afterAll(() => {
  WorkerSession.prototype.run = run;
});

beforeAll(async () => {
  root = mkdtempSync(join(process.env.KINFER_TEST_DIR!, 'session-split-'));
  await writeSamples(root, { perClass: 2 });
});

/** A test run of `model` over `dataset` with SESSIONS=`sessions`: every image's result, the metrics, and how many sessions the runner opened. */
async function testRun(task: string, model: string, dataset: string, split: string, sessions: string, extra: Record<string, string>) {
  const id = randomUUID();
  runsBy.clear();
  const artifacts = pathToFileURL(mkdtempSync(join(root, 'artifacts-'))).href;
  const env = parseRunnerEnv({
    ARTIFACTS_URI: artifacts,
    JOB_ID: id,
    TRACE_ID: id,
    INFERENCE_TYPE: 'test_run',
    BACKEND_BASE_URL: 'http://127.0.0.1:9',
    CALLBACK_TOKEN: 'not-used',
    TASK_TYPE: task,
    CHECKPOINT_PATH: pathToFileURL(join(root, model)).href,
    DATASET_PATH: pathToFileURL(join(root, dataset)).href,
    SPLIT: split,
    BATCH_SIZE: extra.BATCH_SIZE ?? '5',
    INTRA_OP_THREADS: '3',
    SESSIONS: sessions,
    // This process's threads keep their priority (Jest's).
    PIPELINE_NICE: '0',
    SAVE_VISUALIZATIONS: 'false',
    ...extra,
  });
  const results: ImageResult[] = [];
  const { log, lines } = capturedLog();
  const done = await runJob({
    env,
    store: new ObjectStore({ region: 'us-east-1' }),
    log,
    signal: new AbortController().signal,
    artifactsUri: artifacts,
    callbacks: {
      progress: async () => undefined,
      imageResults: async (batch) => void results.push(...batch),
    },
  });
  const loaded = lines.find((l) => l.msg === 'model loaded')!;
  expect(Boolean(loaded.candidate_columns)).toBe(extra.CONF_THRESHOLD !== undefined);
  if (done?.status !== 'completed') throw new Error(`the run did not complete: ${JSON.stringify(done)}`);
  return {
    status: done.status,
    metrics: done.metrics,
    // Timings are the only fields a run's schedule may change; a semantic mask is in its run's
    // artifacts: its bytes, not its path.
    images: results
      .sort((a, b) => a.image_index - b.image_index)
      .map(({ timings: _, ...r }) => (r.mask_path ? { ...r, mask_path: readFileSync(fileURLToPath(r.mask_path)).toString('base64') } : r)),
    sessions: (loaded.sessions as number | undefined) ?? 1,
    runs: [...runsBy.values()],
  };
}

describe('a batch split over sessions', () => {
  it.each([
    ['image_classification', 'color-classifier.onnx', 'colors', 'test', {}],
    ['object_detection', 'shapes/detect/model.onnx', 'shapes/detect/data', 'val', {}],
    ['instance_segmentation', 'shapes/segment/model.onnx', 'shapes/segment/data', 'val', {}],
    ['pose_estimation', 'shapes/pose/model.onnx', 'shapes/pose/data', 'val', {}],
    ['semantic_segmentation', 'shapes/semantic/model.onnx', 'shapes/semantic/data', 'val', {}],
    // Each part's head output cut down to its own candidate columns in the session (a threshold
    // from 0.1 up): its columns are not the other parts'.
    ['object_detection', 'shapes/detect/model.onnx', 'shapes/detect/data', 'val', { CONF_THRESHOLD: '0.25' }],
    // Batches of one image: each goes whole to the least busy session, as a fixed batch does.
    ['object_detection', 'shapes/detect/model.onnx', 'shapes/detect/data', 'val', { BATCH_SIZE: '1' }],
  ])(
    '%s (%s in %s/%s, %j): every image and the metrics as with one session',
    async (task, model, dataset, split, extra: Record<string, string>) => {
      const whole = await testRun(task, model, dataset, split, '1', extra);
      expect(whole.status).toBe('completed');
      expect(whole.sessions).toBe(1);
      // What the test stands on: more than one batch, an unreadable image, images with results.
      const files = readdirSync(join(root, dataset, split), { recursive: true }).map(String);
      expect(whole.images.length).toBeGreaterThan(5);
      expect(whole.images.length).toBe(files.filter((f) => /\.(png|jpe?g)$/.test(f) && !/(^|\/)(masks|labels)\//.test(f)).length);
      expect(whole.images.filter((r) => r.error !== null).length).toBe(1);
      const decoded = whole.images.length - 1;
      const batch = Number(extra.BATCH_SIZE ?? 5);
      expect(whole.runs).toEqual([Math.ceil(decoded / batch)]);
      for (const sessions of ['2', '3']) {
        const split3 = await testRun(task, model, dataset, split, sessions, extra);
        expect(split3.sessions).toBe(Number(sessions));
        // Batches of 5 (the last smaller): a part on every session while the batch has as many
        // images. Batches of one: one run an image, on whichever session was free.
        const runs = batch === 1 ? [decoded] : [...Array(Number(sessions)).keys()].map((s) => Math.floor(decoded / batch) + (decoded % batch > s ? 1 : 0));
        expect(batch === 1 ? [split3.runs.reduce((a, b) => a + b, 0)] : split3.runs.sort().reverse()).toEqual(runs);
        expect(split3.images).toEqual(whole.images);
        expect(split3.metrics).toEqual(whole.metrics);
      }
    },
    60_000,
  );
});
