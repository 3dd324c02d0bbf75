// Writes the sample model and dataset used by the demo and the quick start.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildColorClassifier } from './color-classifier.ts';
import { buildColorDataset, writeFiles } from './color-dataset.ts';

export interface SamplePaths {
  checkpoint: string;
  datasetRoot: string;
  /** A few unlabeled images for an inference job. */
  images: string[];
}

export async function writeSamples(dir: string, opts: { perClass?: number } = {}): Promise<SamplePaths> {
  await mkdir(dir, { recursive: true });
  const checkpoint = join(dir, 'color-classifier.onnx');
  await writeFile(checkpoint, buildColorClassifier().model);
  const datasetRoot = join(dir, 'colors');
  const files = await buildColorDataset({ perClass: opts.perClass ?? 40, mislabeled: [['red', 'green'], ['blue', 'cyan']], corrupt: ['yellow'] });
  await writeFiles(datasetRoot, files);
  const unlabeled = (await buildColorDataset({ perClass: 1, split: 'unlabeled', seed: 99 })).map((f) => ({ ...f, path: f.path.replace(/^unlabeled\/[^/]+\//, 'unlabeled/') }));
  await writeFiles(datasetRoot, unlabeled);
  return { checkpoint, datasetRoot, images: unlabeled.map((f) => join(datasetRoot, f.path)) };
}
