// Classification test runs and inference jobs against the reference tools themselves on the same
// ONNX files and images: an Ultralytics-style export against `YOLO(model.onnx).val()` (top-1,
// top-5, fitness) and `.predict()` (each image's top-5 and probabilities), whose preprocessing is
// classify_transforms (cv2 decode, PIL bilinear Resize of the shorter side, CenterCrop, /255); and
// a model whose metadata asks for torchvision's ImageNet evaluation transform (Resize(256) bicubic,
// CenterCrop(224), ImageNet mean and std) against torchvision's transforms and ONNX Runtime in
// Python. The classifier's scores depend on every 8 x 8 block of pixels, so one resampled level
// off would show.
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { buildFidelityClassification, buildFidelityClassifier } from '../support/fidelity-models.ts';
import { runReference } from '../support/reference-python.ts';
import { outcome, startTestStack, upload, type TestStack } from '../support/test-stack.ts';

const IMAGENET = { 'kinfer.resize': '256', 'kinfer.interpolation': '"bicubic"', 'kinfer.mean': '[0.485, 0.456, 0.406]', 'kinfer.std': '[0.229, 0.224, 0.225]' };

const SCRIPT = `
import json, os, sys
from pathlib import Path
import numpy as np, onnxruntime as ort, torch
import torchvision.transforms as T
from PIL import Image
from ultralytics import YOLO
root = json.load(open(sys.argv[1]))['root']
model = YOLO(f'{root}/model.onnx', task='classify')
r = model.val(data=root, split='val', imgsz=224, batch=1, device='cpu', plots=False, verbose=False, project=f'{root}/runs', name='val', exist_ok=True, workers=0)
files = sorted(str(p.relative_to(f'{root}/val')) for p in Path(f'{root}/val').rglob('*.*'))
predicted = {}
for f in files:
    [p] = model.predict(f'{root}/val/{f}', imgsz=224, device='cpu', verbose=False)
    predicted[f] = {'top5': list(p.probs.top5), 'probs': p.probs.data.numpy().astype(np.float64).tolist()}
session = ort.InferenceSession(f'{root}/imagenet.onnx', providers=['CPUExecutionProvider'])
tf = T.Compose([T.Resize(256, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(224), T.ToTensor(),
                T.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])])
imagenet = {}
for f in files:
    x = tf(Image.open(f'{root}/val/{f}').convert('RGB'))[None].numpy()
    imagenet[f] = session.run(None, {'images': x})[0][0].astype(np.float64).tolist()
print(json.dumps({'results': r.results_dict, 'predicted': predicted, 'imagenet': imagenet}))
`;

interface Reference {
  results: Record<string, number>;
  predicted: Record<string, { top5: number[]; probs: number[] }>;
  imagenet: Record<string, number[]>;
}

let stack: TestStack;
let reference: Reference;
let run: any;
let images: any[];
let imagenetJob: any;
let imagenetResults: any[];

beforeAll(async () => {
  stack = await startTestStack({ KINFER_RUNNER_BATCH_SIZE: '4' });
  const root = mkdtempSync(join(process.env.KINFER_TEST_DIR!, 'cls-fidelity-'));
  const files = [
    ...(await buildFidelityClassification()),
    { path: 'model.onnx', bytes: buildFidelityClassifier() },
    { path: 'imagenet.onnx', bytes: buildFidelityClassifier({ metadata: IMAGENET }) },
  ];
  for (const f of files) {
    mkdirSync(dirname(join(root, f.path)), { recursive: true });
    writeFileSync(join(root, f.path), f.bytes);
  }
  const s3 = `${stack.s3Prefix}/cls-fidelity`;
  await upload(stack.store, s3, files);
  const created = await stack.api('POST', '/test-runs', {
    checkpoint_path: `${s3}/model.onnx`,
    dataset_path: s3,
    dataset_split: 'val',
    task_type: 'image_classification',
  });
  expect(created.status).toBe(201);
  const job = await stack.api('POST', '/inference-jobs', {
    checkpoint_path: `${s3}/imagenet.onnx`,
    task_type: 'image_classification',
    inference_type: 'dataset',
    input_config: { dataset_path: `${s3}/val` },
  });
  expect(job.status).toBe(201);
  run = await stack.waitFor('test-runs', created.body.id, undefined, 180_000);
  images = (await stack.api('GET', `/test-runs/${run.id}/images?limit=1000`)).body.images;
  imagenetJob = await stack.waitFor('inference-jobs', job.body.id, undefined, 180_000);
  imagenetResults = (await stack.api('GET', `/inference-jobs/${imagenetJob.id}/results?limit=1000`)).body.results;
  reference = runReference(SCRIPT, { root });
}, 900_000);

afterAll(async () => {
  await stack?.stop();
});

const relative = (p: string) => p.replace(/^.*?val\//, '');

describe('classification: a test run is `yolo val`, an image is `yolo predict`', () => {
  it('completes', () => {
    expect(outcome(run)).toEqual({ status: 'completed', error_message: null });
    expect(images).toHaveLength(40);
  });

  it("has yolo val's top-1, top-5 and fitness, and the same accuracy", () => {
    const m = run.overall_metrics;
    expect({ top1: m['ultralytics/accuracy_top1'], top5: m['ultralytics/accuracy_top5'], fitness: m['ultralytics/fitness'] }).toEqual({
      top1: reference.results['metrics/accuracy_top1'],
      top5: reference.results['metrics/accuracy_top5'],
      fitness: reference.results.fitness,
    });
    expect(Math.fround(m.accuracy)).toBe(reference.results['metrics/accuracy_top1']);
    expect(Math.fround(m.top5_accuracy)).toBe(reference.results['metrics/accuracy_top5']);
    // Not a degenerate case.
    expect(reference.results['metrics/accuracy_top5']).toBeGreaterThan(reference.results['metrics/accuracy_top1']!);
  });

  it("gives every image yolo predict's top-5 and probabilities", () => {
    let compared = 0;
    for (const row of images) {
      const want = reference.predicted[relative(row.image_path)]!;
      expect({ image: row.image_path, top5: row.predictions.map((p: any) => p.class_id) }).toEqual({ image: row.image_path, top5: want.top5 });
      for (const p of row.predictions) expect(Math.abs(p.confidence - want.probs[p.class_id]!)).toBeLessThanOrEqual(1e-6);
      compared++;
    }
    expect(compared).toBe(40);
  });
});

describe("classification with torchvision's ImageNet transform (bicubic Resize(256), CenterCrop(224), mean/std)", () => {
  it('gives every image the probabilities of torchvision + ONNX Runtime', () => {
    expect(outcome(imagenetJob)).toEqual({ status: 'completed', error_message: null });
    expect(imagenetResults).toHaveLength(40);
    for (const row of imagenetResults) {
      const want = reference.imagenet[relative(row.image_path)]!;
      const order = want.map((_, i) => i).sort((a, b) => want[b]! - want[a]! || a - b);
      expect({ image: row.image_path, top5: row.predictions.map((p: any) => p.class_id) }).toEqual({ image: row.image_path, top5: order.slice(0, 5) });
      for (const p of row.predictions) expect(Math.abs(p.confidence - want[p.class_id]!)).toBeLessThanOrEqual(1e-6);
    }
  });
});
