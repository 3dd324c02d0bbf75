// The sample model and dataset used by the demo, the quick start and every tier's example job:
// `color-classifier.onnx` and `colors/{test/<class>/*, unlabeled/*}` under one root; and for the
// other tasks `shapes/<task>/{model.onnx, data/val/...}` (shape-models.ts, shape-datasets.ts).
import { join } from 'node:path';
import { buildColorClassifier } from './color-classifier.ts';
import { buildColorDataset, writeFiles, type ColorDatasetOptions } from './color-dataset.ts';
import { buildShapeDataset, type ShapeTask } from './shape-datasets.ts';
import { buildShapeModel } from './shape-models.ts';

/** Folder under `shapes/` of each task's sample (the REST task_type to use with it). */
export const SHAPE_SAMPLES: Record<ShapeTask, string> = {
  detect: 'object_detection',
  segment: 'instance_segmentation',
  pose: 'pose_estimation',
  semantic: 'semantic_segmentation',
};

export interface SamplePaths {
  checkpoint: string;
  datasetRoot: string;
  /** A few unlabeled images for an inference job. */
  images: string[];
}

export interface SampleFile {
  /** Relative to the samples root. */
  path: string;
  bytes: Uint8Array;
}

/** The labeled part: two deliberately mislabeled images and one corrupt file. */
export const sampleDatasetOptions = (perClass = 40): ColorDatasetOptions => ({
  perClass,
  mislabeled: [
    ['red', 'green'],
    ['blue', 'cyan'],
  ],
  corrupt: ['yellow'],
});

export async function buildSamples(opts: { perClass?: number } = {}): Promise<SampleFile[]> {
  const dataset = await buildColorDataset(sampleDatasetOptions(opts.perClass));
  const unlabeled = (await buildColorDataset({ perClass: 1, split: 'unlabeled', seed: 99 })).map((f) => ({
    ...f,
    path: f.path.replace(/^unlabeled\/[^/]+\//, 'unlabeled/'),
  }));
  const shapes: SampleFile[] = [];
  for (const task of Object.keys(SHAPE_SAMPLES) as ShapeTask[]) {
    shapes.push({ path: `shapes/${task}/model.onnx`, bytes: buildShapeModel(task) });
    for (const f of (await buildShapeDataset(task)).files) shapes.push({ path: `shapes/${task}/data/${f.path}`, bytes: f.bytes });
  }
  return [
    { path: 'color-classifier.onnx', bytes: buildColorClassifier().model },
    ...[...dataset, ...unlabeled].map((f) => ({ path: `colors/${f.path}`, bytes: f.bytes })),
    ...shapes,
  ];
}

export async function writeSamples(dir: string, opts: { perClass?: number } = {}): Promise<SamplePaths> {
  const files = await buildSamples(opts);
  await writeFiles(dir, files);
  return {
    checkpoint: join(dir, 'color-classifier.onnx'),
    datasetRoot: join(dir, 'colors'),
    images: files.filter((f) => f.path.startsWith('colors/unlabeled/')).map((f) => join(dir, f.path)),
  };
}
