// A table of job requests the admission must refuse, each written for both doors (a REST body and
// an InferenceJob spec) with the problems expected, in the REST API's field names. The models and
// data they point at are written to object storage first.
import { buildColorClassifier, COLOR_CLASSES } from '../../src/samples/color-classifier.ts';
import { buildColorDataset } from '../../src/samples/color-dataset.ts';
import { GraphBuilder } from '../../src/samples/onnx-writer.ts';
import type { ModelStore } from '../../src/db/model-store.ts';
import type { StorageClient } from '../../src/storage/object-store.ts';
import { mkdirSync, mkdtempSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';

export interface ExpectedProblem {
  field: string;
  message: string | RegExp;
}

interface Request {
  kind: 'test_run' | 'inference_job';
  checkpoint?: string;
  /** A registered model (`model`, `spec.model`). */
  model?: string;
  task?: string;
  dataset?: string;
  split?: string;
  xai?: { method?: string; targetLayer?: string; target?: 'predicted' | 'true' };
  input?: { image_path?: string; dataset_path?: string };
  inferenceType?: 'single' | 'batch' | 'dataset';
  parallelism?: number;
}

export interface InvalidCase {
  name: string;
  rest: { path: '/test-runs' | '/inference-jobs'; body: Record<string, unknown> };
  spec: Record<string, unknown>;
  expected: ExpectedProblem[];
  /** The CRD (OpenAPI schema, CEL) refuses it already: kubectl apply fails with this. */
  crdRefuses?: RegExp;
}

function restOf(r: Request): InvalidCase['rest'] {
  const xai = r.xai
    ? {
        enable_xai: true,
        ...(r.xai.method ? { xai_method: r.xai.method } : {}),
        ...(r.xai.targetLayer || r.xai.target
          ? { xai_config: { ...(r.xai.targetLayer ? { target_layer: r.xai.targetLayer } : {}), ...(r.xai.target ? { target: r.xai.target } : {}) } }
          : {}),
      }
    : {};
  const common = {
    ...(r.checkpoint ? { checkpoint_path: r.checkpoint } : {}),
    ...(r.model ? { model: r.model } : {}),
    task_type: r.task ?? 'image_classification',
    ...(r.parallelism !== undefined ? { parallelism: r.parallelism } : {}),
    ...xai,
  };
  if (r.kind === 'test_run') return { path: '/test-runs', body: { ...common, dataset_path: r.dataset, ...(r.split ? { dataset_split: r.split } : {}) } };
  return { path: '/inference-jobs', body: { ...common, inference_type: r.inferenceType ?? 'single', input_config: r.input } };
}

function specOf(r: Request): Record<string, unknown> {
  const xai = r.xai
    ? {
        xai: {
          enabled: true,
          ...(r.xai.method ? { method: r.xai.method } : {}),
          ...(r.xai.targetLayer ? { targetLayer: r.xai.targetLayer } : {}),
          ...(r.xai.target ? { target: r.xai.target } : {}),
        },
      }
    : {};
  const common = {
    taskType: r.task ?? 'image_classification',
    ...(r.checkpoint ? { checkpointPath: r.checkpoint } : {}),
    ...(r.model ? { model: r.model } : {}),
    ...(r.parallelism !== undefined ? { parallelism: r.parallelism } : {}),
    ...xai,
  };
  if (r.kind === 'test_run') return { type: 'test_run', ...common, dataset: { path: r.dataset, ...(r.split ? { split: r.split } : {}) } };
  return {
    type: 'inference',
    ...common,
    input: { ...(r.input?.image_path ? { imagePath: r.input.image_path } : {}), ...(r.input?.dataset_path ? { datasetPath: r.input.dataset_path } : {}) },
  };
}

/** A classifier of 8x8 images whose output has `outputs` scores, with `names` in its metadata. */
function classifier(outputs: number, names: string[], task = 'classify'): Uint8Array {
  const g = new GraphBuilder();
  const x = g.input('images', [1, 3, 8, 8]);
  const pooled = g.node('Flatten', [g.node('GlobalAveragePool', [x])]);
  g.node('MatMul', [pooled, g.weight('w', [3, outputs], new Float32Array(3 * outputs).fill(0.1))], {}, 'scores');
  g.output('scores', [1, outputs]);
  return g.toModel({ metadata: { names: `{${names.map((n, i) => `${i}: '${n}'`).join(', ')}}`, imgsz: '[8, 8]', task } });
}

/**
 * The table, its files written to storage and, with a registry, the model `colors@1.0.0`
 * (image_classification, production) registered for the cases that name a registered model.
 */
export async function invalidJobCases(storage: StorageClient, prefix: string, registry?: ModelStore): Promise<InvalidCase[]> {
  const model = `${prefix}/models/colors.onnx`;
  const dataset = `${prefix}/data/colors`;
  const zoo = `${prefix}/data/zoo`;
  const files = await buildColorDataset({ perClass: 1 });
  const red = files.find((f) => f.path.startsWith('test/red/'))!;
  await Promise.all([
    storage.write(model, buildColorClassifier().model),
    storage.write(`${prefix}/models/three-of-four.onnx`, classifier(3, ['a', 'b', 'c', 'd'])),
    storage.write(`${prefix}/models/detector.onnx`, classifier(3, ['a', 'b', 'c'], 'detect')),
    storage.write(`${prefix}/models/bogus.onnx`, new TextEncoder().encode('definitely not protobuf')),
    ...files.map((f) => storage.write(`${dataset}/${f.path}`, f.bytes)),
    storage.write(`${zoo}/test/red/a.png`, red.bytes),
    storage.write(`${zoo}/test/zebra/b.png`, red.bytes),
  ]);
  const names = COLOR_CLASSES.map((c) => c.name);
  await registry?.register({
    name: 'colors',
    version: '1.0.0',
    task_type: 'image_classification',
    checkpoint_path: model,
    metadata: {},
    stage: 'production',
    tags: {},
    metrics: {},
    created_by: 'admin',
  });
  // A folder the policy allows (the suites' folder), with a symbolic link in it that leads out.
  const allowedDir = mkdtempSync(join(process.env.KINFER_TEST_DIR!, 'allowed-'));
  mkdirSync(join(allowedDir, 'data'));
  symlinkSync('/etc', join(allowedDir, 'data', 'escape'));
  const allowed = `KINFER_ALLOWED_URIS (s3://${process.env.KINFER_TEST_BUCKET}, ${process.env.KINFER_TEST_DIR})`;
  const image = `${dataset}/${red.path}`;
  const cases: Array<{ name: string; request: Request; expected: ExpectedProblem[]; crdRefuses?: RegExp }> = [
    {
      name: 'a model that does not exist',
      request: { kind: 'test_run', checkpoint: `${prefix}/models/missing.onnx`, dataset },
      expected: [{ field: 'checkpoint_path', message: `no such object: ${prefix}/models/missing.onnx` }],
    },
    {
      name: 'a dataset that does not exist',
      request: { kind: 'test_run', checkpoint: model, dataset: `${prefix}/data/none` },
      expected: [{ field: 'dataset_path', message: `no such folder or prefix: ${prefix}/data/none` }],
    },
    {
      name: 'a split that does not exist',
      request: { kind: 'test_run', checkpoint: model, dataset, split: 'val' },
      expected: [{ field: 'dataset_split', message: `no such folder or prefix: ${dataset}/val` }],
    },
    {
      name: 'a checkpoint that is not ONNX',
      request: { kind: 'test_run', checkpoint: `${prefix}/models/bogus.onnx`, dataset },
      expected: [{ field: 'checkpoint_path', message: /^not an ONNX model: / }],
    },
    {
      name: 'a classifier whose outputs disagree with its class names',
      request: { kind: 'test_run', checkpoint: `${prefix}/models/three-of-four.onnx`, dataset },
      expected: [{ field: 'checkpoint_path', message: 'the model outputs 3 class scores but its metadata names 4 classes' }],
    },
    {
      name: 'a model exported for another task',
      request: { kind: 'test_run', checkpoint: `${prefix}/models/detector.onnx`, dataset },
      expected: [{ field: 'task_type', message: "the model's task is object_detection but the job asks for image_classification" }],
    },
    {
      name: 'a dataset class the model does not know',
      request: { kind: 'test_run', checkpoint: model, dataset: zoo },
      expected: [{ field: 'dataset_path', message: `dataset class folders not among the model's classes: zebra (model classes: ${names.join(', ')})` }],
    },
    {
      name: 'an explanation of a class score asked of a detector',
      request: {
        kind: 'inference_job',
        task: 'object_detection',
        checkpoint: `${prefix}/models/detector.onnx`,
        input: { image_path: image },
        xai: { method: 'gradcam' },
      },
      expected: [
        { field: 'xai_method', message: 'gradcam explains a class score: it fits image_classification, not object_detection (eigencam explains any task)' },
      ],
    },
    {
      name: 'attention rollout of a CNN',
      request: { kind: 'test_run', checkpoint: model, dataset, xai: { method: 'attention' } },
      expected: [
        { field: 'xai_method', message: 'attention rollout needs a vision transformer: no attention softmax (MatMul -> Softmax -> MatMul) in this graph' },
      ],
    },
    {
      name: 'a target layer the graph does not have',
      request: { kind: 'test_run', checkpoint: model, dataset, xai: { method: 'gradcam', targetLayer: 'layer9' } },
      expected: [{ field: 'xai_config.target_layer', message: 'target layer layer9 is not a tensor of this graph' }],
    },
    {
      name: 'the true class explained where there are no labels',
      request: { kind: 'inference_job', checkpoint: model, input: { image_path: image }, xai: { target: 'true' } },
      expected: [{ field: 'xai_config.target', message: 'true explains the labelled class: test runs only' }],
    },
    {
      name: 'an S3 URI with an invalid bucket name',
      request: { kind: 'test_run', checkpoint: 's3://Bad_Bucket/m.onnx', dataset },
      expected: [
        {
          field: 'checkpoint_path',
          message: 'invalid storage location "s3://Bad_Bucket/m.onnx": bucket name must be 3-63 lowercase letters, digits, dots or hyphens',
        },
      ],
    },
    {
      name: 'an image that does not exist',
      request: { kind: 'inference_job', checkpoint: model, input: { image_path: `${prefix}/inbox/none.png` } },
      expected: [{ field: 'input_config.image_path', message: `no such object: ${prefix}/inbox/none.png` }],
    },
    {
      name: 'a split that climbs out of the dataset',
      request: { kind: 'test_run', checkpoint: model, dataset, split: '..' },
      expected: [{ field: 'dataset_split', message: 'must be a folder name, not . or ..' }],
      crdRefuses: /spec\.dataset\.split.*must be a folder name, not \. or \.\./,
    },
    {
      name: 'the filesystem root as a dataset',
      request: { kind: 'test_run', checkpoint: model, dataset: '/' },
      expected: [{ field: 'dataset_path', message: 'invalid storage location "/": the filesystem root is not a storage location' }],
    },
    {
      name: 'a local path that climbs out with ..',
      request: { kind: 'inference_job', checkpoint: model, input: { image_path: '/srv/images/../../etc/passwd' } },
      expected: [
        {
          field: 'input_config.image_path',
          message: 'invalid storage location "/srv/images/../../etc/passwd": the path must be normalised (no `.`, `..` or empty segments)',
        },
      ],
    },
    {
      name: 'a file of the host outside the allowed locations',
      request: { kind: 'test_run', checkpoint: '/etc/passwd', dataset },
      expected: [{ field: 'checkpoint_path', message: `not an allowed storage location: /etc/passwd is outside ${allowed}` }],
    },
    {
      name: "the runner's own environment through file://",
      request: { kind: 'inference_job', checkpoint: model, input: { image_path: 'file:///proc/self/environ' } },
      expected: [{ field: 'input_config.image_path', message: `not an allowed storage location: file:///proc/self/environ is outside ${allowed}` }],
    },
    {
      name: 'a bucket that is not allowed',
      request: { kind: 'test_run', checkpoint: 's3://another-bucket/m.onnx', dataset },
      expected: [{ field: 'checkpoint_path', message: `not an allowed storage location: s3://another-bucket/m.onnx is outside ${allowed}` }],
    },
    {
      name: 'a symbolic link out of an allowed folder',
      request: { kind: 'test_run', checkpoint: model, dataset: `${allowedDir}/data/escape` },
      expected: [
        {
          field: 'dataset_path',
          message: `not an allowed storage location: ${allowedDir}/data/escape leads through a symbolic link to /etc, outside ${allowed}`,
        },
      ],
    },
    {
      name: 'a registered model that does not exist',
      request: { kind: 'test_run', model: 'nosuch@1.0.0', dataset },
      expected: [{ field: 'model', message: 'no registered model nosuch@1.0.0' }],
    },
    {
      name: 'a registered model of another task',
      request: { kind: 'inference_job', model: 'colors', task: 'object_detection', input: { image_path: image } },
      expected: [{ field: 'model', message: 'colors@1.0.0 is registered for image_classification, not object_detection' }],
    },
    {
      name: 'a registered model and a checkpoint both',
      request: { kind: 'test_run', model: 'colors@1.0.0', checkpoint: model, dataset },
      expected: [{ field: 'model', message: 'set checkpoint_path or model, not both' }],
      crdRefuses: /set exactly one of spec.checkpointPath and spec.model/,
    },
    {
      name: 'more shards than one job may have',
      request: { kind: 'test_run', checkpoint: model, dataset, parallelism: 65 },
      expected: [{ field: 'parallelism', message: 'Too big: expected number to be <=64' }],
      crdRefuses: /spec\.parallelism: Invalid value: 65: spec\.parallelism in body should be less than or equal to 64/,
    },
    {
      name: 'two inputs for one inference job',
      request: { kind: 'inference_job', checkpoint: model, input: { image_path: `${dataset}/${red.path}`, dataset_path: dataset } },
      expected: [{ field: 'input_config', message: 'inference_type single reads input_config.image_path only; remove input_config.dataset_path' }],
      crdRefuses: /set exactly one of imagePath, imagePaths, datasetPath/,
    },
  ];
  return cases.map((c) => ({
    name: c.name,
    rest: restOf(c.request),
    spec: specOf(c.request),
    expected: c.expected,
    ...(c.crdRefuses ? { crdRefuses: c.crdRefuses } : {}),
  }));
}
