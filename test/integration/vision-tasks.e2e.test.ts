// Every vision task end to end (REST -> Postgres -> runner subprocess with real ONNX Runtime ->
// callbacks -> Postgres + S3 -> REST), on generated models whose right answers are known
// (src/samples/shape-models.ts) and datasets with planted faults (src/samples/shape-datasets.ts).
// Expected metrics come from pycocotools itself, fed the dataset's own ground truth and the job's
// COCO export; semantic figures from a plain count over the PNGs written.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { buildShapeDataset, type ShapeDataset, type ShapeTask } from '../../src/samples/shape-datasets.ts';
import { buildShapeModel, CONFIDENCE, KEYPOINT_SCORE, POSE_TEMPLATE, SHAPE_CLASSES } from '../../src/samples/shape-models.ts';
import { runCommand } from '../support/processes.ts';
import { pycocotoolsEvaluate } from '../support/pycocotools.ts';
import { outcome, startTestStack, upload, type TestStack } from '../support/test-stack.ts';

let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack({ KINFER_RUNNER_BATCH_SIZE: '4' });
}, 60_000);

afterAll(async () => {
  await stack?.stop();
});

async function exported(kind: 'test-runs' | 'inference-jobs', id: string, format: string): Promise<{ status: number; type: string; text: string }> {
  const res = await fetch(`${stack.apiUrl}/${kind}/${id}/export?format=${format}`, { headers: stack.bearer });
  return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() };
}

async function allImages(id: string): Promise<any[]> {
  const res = await stack.api('GET', `/test-runs/${id}/images?limit=1000`);
  return res.body.images;
}

/** Uploads a model and dataset, runs a test run to its end. */
async function testRun(
  task: ShapeTask,
  taskType: string,
  modelKind: Parameters<typeof buildShapeModel>[0] = task,
): Promise<{ run: any; data: ShapeDataset; root: string }> {
  const root = `${stack.s3Prefix}/shapes-${modelKind}`;
  const data = await buildShapeDataset(task);
  await upload(stack.store, `${root}/data`, data.files);
  await stack.store.write(`${root}/model.onnx`, Buffer.from(buildShapeModel(modelKind)));
  const created = await stack.api('POST', '/test-runs', {
    checkpoint_path: `${root}/model.onnx`,
    dataset_path: `${root}/data`,
    dataset_split: 'val',
    task_type: taskType,
  });
  expect(created.status).toBe(201);
  return { run: await stack.waitFor('test-runs', created.body.id, undefined, 90_000), data, root };
}

const STATS = ['mAP50-95', 'mAP50', 'mAP75', 'mAP_small', 'mAP_medium', 'mAP_large', 'AR1', 'AR10', 'AR100', 'AR_small', 'AR_medium', 'AR_large'];
const KP_STATS = ['mAP50-95', 'mAP50', 'mAP75', 'mAP_medium', 'mAP_large', 'AR20', 'AR20_50', 'AR20_75', 'AR_medium', 'AR_large'];

function expectPycocotools(run: any, reference: { stats: number[] }, type: string) {
  const names = type === 'keypoints' ? KP_STATS : STATS;
  names.forEach((name, i) => {
    const want = reference.stats[i]! < 0 ? null : reference.stats[i]!;
    const got = run.overall_metrics[`${type}/${name}`];
    if (want === null) expect({ name, got }).toEqual({ name, got: null });
    else expect({ name, got: Number(got.toFixed(12)) }).toEqual({ name, got: Number(want.toFixed(12)) });
  });
}

/** Detections (confidence >= 0.25) against what was drawn: same classes, boxes within one network pixel and a half. */
function expectDrawnObjects(images: any[], data: ShapeDataset, classOf: (o: { classId: number }) => number = (o) => o.classId) {
  for (const truth of data.images) {
    const row = images.find((r) => r.image_path === truth.file)!;
    if (truth.corrupt) {
      expect(row.error_message).toMatch(/decode/i);
      continue;
    }
    const found = row.detections.filter((d: any) => d.confidence >= 0.25);
    expect({ file: truth.file, classes: found.map((d: any) => d.class_id).sort() }).toEqual({ file: truth.file, classes: truth.drawn.map(classOf).sort() });
    // The 64-pixel network sees 1/gain original pixels per pixel.
    const tolerance = 1.5 / Math.min(1, 64 / truth.width, 64 / truth.height);
    for (const o of truth.drawn) {
      const d = found.find((x: any) => x.class_id === classOf(o))!;
      const [x, y, w, h] = o.box;
      [x, y, x + w, y + h].forEach((v, i) => expect(Math.abs(d.bbox[i] - v)).toBeLessThanOrEqual(tolerance));
    }
  }
}

describe('object detection (COCO layout)', () => {
  let run: any;
  let data: ShapeDataset;
  let images: any[];
  let coco: any[];
  let annotations: any;

  beforeAll(async () => {
    ({ run, data } = await testRun('detect', 'object_detection'));
    images = await allImages(run.id);
    const res = await exported('test-runs', run.id, 'coco');
    expect(res.status).toBe(200);
    coco = JSON.parse(res.text);
    annotations = JSON.parse(data.files.find((f) => f.path.endsWith('annotations.json'))!.bytes.toString());
  }, 120_000);

  it('completes, with the corrupt file as a per-image error', () => {
    expect(outcome(run)).toEqual({ status: 'completed', error_message: null });
    expect(run.total_images).toBe(data.images.length);
    expect(run.failed_images).toBe(1);
    expect(run.primary_metric_name).toBe('bbox/mAP50-95');
  });

  it("finds what was drawn, in original pixels, with the model's confidence and the dataset's category ids", () => {
    expectDrawnObjects(images, data);
    const d = images.find((r) => r.detections?.length)!.detections[0];
    expect(d.confidence).toBeCloseTo(CONFIDENCE[d.class_id]!, 6);
    expect(d.category_id).toBe(1 + 2 * d.class_id);
    expect(d.class_name).toBe(SHAPE_CLASSES[d.class_id]!.name);
  });

  it('has mAP, AR and per-class AP equal to pycocotools on the same annotations and the COCO export', () => {
    const [ref] = pycocotoolsEvaluate([{ gt: annotations, dt: coco, iouType: 'bbox' }]);
    expectPycocotools(run, ref!, 'bbox');
    for (const c of run.per_class_metrics) {
      const p = ref!.perCategory.find((x) => x.category_id === 1 + 2 * c.class_id)!;
      expect(c.ap === null ? -1 : Number(c.ap.toFixed(12))).toBe(Number(p.ap.toFixed(12)));
      expect(c.ap50 === null ? -1 : Number(c.ap50.toFixed(12))).toBe(Number(p.ap50.toFixed(12)));
      // The precision-recall curve at IoU 0.5, stored with the run: pycocotools' own, point by point.
      const round = (xs: number[]) => xs.map((v) => Number(v.toFixed(12)));
      expect(c.pr_curve === null ? null : round(c.pr_curve)).toEqual(p.pr50.every((v) => v >= 0) ? round(p.pr50) : null);
    }
    // 'yellow' has no ground truth: pycocotools leaves it out (-1) rather than scoring it 0.
    expect(ref!.perCategory.find((x) => x.category_id === 7)!.ap).toBe(-1);
    expect(run.primary_metric_value).toBeGreaterThan(0.3);
    expect(run.primary_metric_value).toBeLessThan(1);
  });

  it('scores each image: the empty one is right, the planted miss and false positive are counted', () => {
    const byFile = (n: number) => images.find((r) => r.image_path === data.images[n]!.file)!;
    expect(byFile(0)).toMatchObject({ detections: [], ground_truth: [], is_correct: true, image_metrics: { tp: 0, fp: 0, fn: 0 } });
    expect(byFile(1).image_metrics.fn).toBe(1); // labelled, not drawn
    expect(byFile(1).is_correct).toBe(false);
    expect(byFile(2).image_metrics.fp).toBe(1); // drawn, not labelled
    // The crowd region: its detection is neither a hit nor a false positive.
    const crowd = byFile(3);
    expect(crowd.ground_truth.some((g: any) => g.iscrowd)).toBe(true);
    expect(crowd.image_metrics.fp).toBe(0);
    const corrupt = images.find((r) => r.error_message)!;
    expect(corrupt).toMatchObject({ detections: null, image_metrics: { fn: 1 } });
  });

  it('draws every readable image under visualizations/', async () => {
    const row = images.find((r) => r.detections?.length)!;
    expect(row.visualization_path).toMatch(/\/visualizations\/\d{6}\.jpg$/);
    const meta = await sharp(await stack.store.read(row.visualization_path)).metadata();
    const truth = data.images.find((t) => t.file === row.image_path)!;
    expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', truth.width, truth.height]);
  });

  it('exports CSV (a line per object, an image without objects still listed) and JSON', async () => {
    const csv = await exported('test-runs', run.id, 'csv');
    expect(csv.type).toMatch(/^text\/csv/);
    const lines = csv.text.trimEnd().split('\r\n');
    expect(lines[0]).toBe(
      'image_index,image_path,image_id,object_index,class_id,class_name,category_id,confidence,x1,y1,x2,y2,match_iou,keypoints,image_correct,error',
    );
    const objects = images.reduce((n, r) => n + (r.detections?.length ?? 0), 0);
    const withoutObjects = images.filter((r) => !r.detections?.length).length;
    expect(lines.length - 1).toBe(objects + withoutObjects);
    const json = JSON.parse((await exported('test-runs', run.id, 'json')).text);
    expect(json.map((r: any) => r.image_index)).toEqual(images.map((r) => r.image_index));
    const bad = await stack.api('GET', `/test-runs/${run.id}/export?format=xml`);
    expect(bad.status).toBe(400);
    expect(bad.body.fields[0].field).toBe('format');
  });

  it('exports through the CLI as through the API', async () => {
    const out = join(mkdtempSync(join(process.env.KINFER_TEST_DIR ?? tmpdir(), 'export-')), 'results.json');
    const kinfer = (args: string[]) => runCommand(resolve('bin/kinfer'), args, { env: { ...process.env, NODE_OPTIONS: '', KINFER_HOME: stack.home } });
    const res = await kinfer(['export', 'test-run', run.id, '--format', 'coco', '-o', out, '--api', stack.apiUrl]);
    expect(res.code).toBe(0);
    expect(JSON.parse(readFileSync(out, 'utf8'))).toEqual(coco);
    const missing = await kinfer(['export', 'test-run', '6f1c2d4e-8a3b-4c5d-9e7f-0a1b2c3d4e5f', '--api', stack.apiUrl]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/HTTP 404: test run .* not found/);
  });
});

describe('object detection with an end-to-end export ([1, N, 6], no NMS)', () => {
  it('gives the same detections and metrics as the [1, 4+nc, N] model', async () => {
    const { run, data } = await testRun('detect', 'object_detection', 'detect-e2e');
    expect(outcome(run)).toEqual({ status: 'completed', error_message: null });
    const images = await allImages(run.id);
    expectDrawnObjects(images, data);
    const annotations = JSON.parse(data.files.find((f) => f.path.endsWith('annotations.json'))!.bytes.toString());
    const [ref] = pycocotoolsEvaluate([{ gt: annotations, dt: JSON.parse((await exported('test-runs', run.id, 'coco')).text), iouType: 'bbox' }]);
    expectPycocotools(run, ref!, 'bbox');
  }, 120_000);
});

describe('instance segmentation (YOLO layout)', () => {
  let run: any;
  let data: ShapeDataset;
  let images: any[];

  beforeAll(async () => {
    ({ run, data } = await testRun('segment', 'instance_segmentation'));
    images = await allImages(run.id);
  }, 120_000);

  it('finds what was drawn and gives each object a mask', () => {
    expect(outcome(run)).toEqual({ status: 'completed', error_message: null });
    expect(run.failed_images).toBe(1);
    expectDrawnObjects(images, data);
    const d = images.find((r) => r.detections?.length)!.detections[0];
    expect(d.mask.counts).toEqual(expect.any(String));
  });

  it('has mask and box mAP equal to pycocotools on the labels (as COCO polygons) and the export', async () => {
    // The labels, written independently as COCO: YOLO ids are the class ids, images in file order.
    const readable = data.images.filter((t) => !t.corrupt);
    const gtImages = readable.map((t) => ({ id: images.find((r) => r.image_path === t.file)!.image_id, file_name: t.file, width: t.width, height: t.height }));
    const annotations: any[] = [];
    for (const [i, t] of readable.entries()) {
      const label = data.files.find((f) => f.path === `val/labels/${t.file.slice('images/'.length).replace(/\.\w+$/, '.txt')}`);
      for (const line of label ? label.bytes.toString().trim().split('\n') : []) {
        const [cls, ...v] = line.split(' ').map(Number);
        const polygon = v.map((x, j) => (j % 2 === 0 ? x! * t.width : x! * t.height));
        const xs = polygon.filter((_, j) => j % 2 === 0);
        const ys = polygon.filter((_, j) => j % 2 === 1);
        annotations.push({
          id: annotations.length + 1,
          image_id: gtImages[i]!.id,
          category_id: cls,
          iscrowd: 0,
          segmentation: [polygon],
          bbox: [Math.min(...xs), Math.min(...ys), Math.max(...xs) - Math.min(...xs), Math.max(...ys) - Math.min(...ys)],
        });
      }
    }
    const gt = { info: {}, images: gtImages, categories: SHAPE_CLASSES.map((c, id) => ({ id, name: c.name })), annotations };
    const dt = JSON.parse((await exported('test-runs', run.id, 'coco')).text);
    expect(dt[0].segmentation.counts).toEqual(expect.any(String));
    const [segm, bbox] = pycocotoolsEvaluate([
      { gt, dt, iouType: 'segm' },
      { gt, dt, iouType: 'bbox' },
    ]);
    expectPycocotools(run, segm!, 'segm');
    expectPycocotools(run, bbox!, 'bbox');
    expect(run.primary_metric_name).toBe('segm/mAP50-95');
    expect(run.primary_metric_value).toBeGreaterThan(0.3);
  });
});

describe('pose estimation (COCO keypoints)', () => {
  it('places keypoints in original pixels and has keypoint AP equal to pycocotools (OKS, COCO sigmas)', async () => {
    const { run, data } = await testRun('pose', 'pose_estimation');
    expect(outcome(run)).toEqual({ status: 'completed', error_message: null });
    const images = await allImages(run.id);
    expectDrawnObjects(images, data, () => 0);
    for (const truth of data.images.filter((t) => t.drawn.length)) {
      const d = images.find((r) => r.image_path === truth.file)!.detections[0];
      const [x, y, w, h] = truth.drawn[0]!.box;
      const tolerance = 1.5 / Math.min(1, 64 / truth.width, 64 / truth.height);
      expect(d.keypoints).toHaveLength(51);
      POSE_TEMPLATE.forEach(([fx, fy], k) => {
        expect(Math.abs(d.keypoints[3 * k] - (x + fx * w))).toBeLessThanOrEqual(tolerance);
        expect(Math.abs(d.keypoints[3 * k + 1] - (y + fy * h))).toBeLessThanOrEqual(tolerance);
        expect(d.keypoints[3 * k + 2]).toBeCloseTo(KEYPOINT_SCORE, 6);
      });
    }
    const annotations = JSON.parse(data.files.find((f) => f.path.endsWith('annotations.json'))!.bytes.toString());
    const dt = JSON.parse((await exported('test-runs', run.id, 'coco')).text);
    const [kp, bbox] = pycocotoolsEvaluate([
      { gt: annotations, dt, iouType: 'keypoints' },
      { gt: annotations, dt, iouType: 'bbox' },
    ]);
    expectPycocotools(run, kp!, 'keypoints');
    expectPycocotools(run, bbox!, 'bbox');
    expect(run.primary_metric_name).toBe('keypoints/mAP50-95');
    // Small people and labels off by up to 2 px: OKS is strict there, but not everything misses.
    expect(run.primary_metric_value).toBeGreaterThan(0);
    expect(run.primary_metric_value).toBeLessThan(1);
  }, 120_000);
});

describe('semantic segmentation (PNG masks)', () => {
  it('writes class-id masks and has mIoU, pixel accuracy and per-class IoU of a plain count over them', async () => {
    const { run, data, root } = await testRun('semantic', 'semantic_segmentation');
    expect(outcome(run)).toEqual({ status: 'completed', error_message: null });
    expect(run.failed_images).toBe(1);
    const images = await allImages(run.id);
    const classes = 4; // background, red, green, blue (blue is in no image)
    const inter = new Array<number>(classes).fill(0);
    const pred = new Array<number>(classes).fill(0);
    const label = new Array<number>(classes).fill(0);
    for (const truth of data.images.filter((t) => !t.corrupt)) {
      const row = images.find((r) => r.image_path === truth.file)!;
      const p = await sharp(await stack.store.read(row.mask_path))
        .extractChannel(0)
        .raw()
        .toBuffer();
      const g = await sharp(await stack.store.read(`${root}/data/val/masks/${truth.file.slice('images/'.length).replace(/\.\w+$/, '.png')}`))
        .extractChannel(0)
        .raw()
        .toBuffer();
      expect(p.length).toBe(truth.width * truth.height);
      // Against what was drawn (not the labels): nearly every pixel right.
      const drawn = new Uint8Array(truth.width * truth.height);
      for (const o of truth.drawn)
        for (let y = o.box[1]; y < o.box[1] + o.box[3]; y++) for (let x = o.box[0]; x < o.box[0] + o.box[2]; x++) drawn[y * truth.width + x] = o.classId + 1;
      expect(p.filter((v, i) => v === drawn[i]).length / p.length).toBeGreaterThan(0.97);
      for (let i = 0; i < g.length; i++) {
        if (g[i] === 255) continue;
        label[g[i]!]!++;
        pred[p[i]!]!++;
        if (p[i] === g[i]) inter[g[i]!]!++;
      }
    }
    const iou = inter.map((n, c) => (pred[c]! + label[c]! - n === 0 ? null : n / (pred[c]! + label[c]! - n)));
    const present = iou.filter((v): v is number => v !== null);
    expect(iou[3]).toBeNull(); // blue: absent from ground truth and predictions, so left out
    expect(run.overall_metrics.mIoU).toBeCloseTo(present.reduce((a, b) => a + b, 0) / present.length, 12);
    expect(run.overall_metrics.pixel_accuracy).toBeCloseTo(inter.reduce((a, b) => a + b, 0) / label.reduce((a, b) => a + b, 0), 12);
    run.per_class_metrics.forEach((c: any) => (iou[c.class_id] === null ? expect(c.iou).toBeNull() : expect(c.iou).toBeCloseTo(iou[c.class_id]!, 12)));
    expect(run.primary_metric_name).toBe('mIoU');
    const coco = await stack.api('GET', `/test-runs/${run.id}/export?format=coco`);
    expect(coco.status).toBe(400);
  }, 120_000);
});

describe('inference job (detection, single image)', () => {
  // The [1, 4+nc, N] model's output is cut down to its candidates in the session (at the predict
  // threshold); the end-to-end export's is not (it is already cut).
  it.each(['detect', 'detect-e2e'] as const)(
    "returns the objects in original pixels with Ultralytics' predict threshold (%s)",
    async (kind) => {
      const root = `${stack.s3Prefix}/shapes-inference-${kind}`;
      const objects = [
        { classId: 1, box: [30, 10, 40, 25] as [number, number, number, number] },
        { classId: 2, box: [5, 50, 20, 30] as [number, number, number, number] },
      ];
      const { renderShapes } = await import('../../src/samples/shape-datasets.ts');
      await stack.store.write(`${root}/photo.png`, await renderShapes(120, 90, objects));
      await stack.store.write(`${root}/model.onnx`, Buffer.from(buildShapeModel(kind)));
      const created = await stack.api('POST', '/inference-jobs', {
        checkpoint_path: `${root}/model.onnx`,
        task_type: 'object_detection',
        inference_type: 'single',
        input_config: { image_path: `${root}/photo.png` },
      });
      expect(created.status).toBe(201);
      const job = await stack.waitFor('inference-jobs', created.body.id, undefined, 60_000);
      expect(outcome(job)).toEqual({ status: 'completed', error_message: null });
      const { body } = await stack.api('GET', `/inference-jobs/${job.id}/results`);
      const [result] = body.results;
      expect(result.detections.map((d: any) => d.class_name)).toEqual(['green', 'blue']);
      result.detections.forEach((d: any, i: number) => {
        const [x, y, w, h] = objects[i]!.box;
        [x, y, x + w, y + h].forEach((v, j) => expect(Math.abs(d.bbox[j] - v)).toBeLessThanOrEqual(1.5));
      });
      expect(result).toMatchObject({ predicted_label: 'green', image_id: 0 });
      expect(result.ground_truth).toBeUndefined();
      const csv = await exported('inference-jobs', job.id, 'csv');
      expect(csv.text.trimEnd().split('\r\n')).toHaveLength(3);
    },
    90_000,
  );
});
