// `kinfer run`: classify images on this machine with the runner's own code, no server involved.
import { writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import type { ImageResult, InputConfig } from '../contract/index.ts';
import { ObjectNotFoundError, ObjectStore } from '../runner/io/object-store.ts';
import { loadModel } from '../runner/model/load-model.ts';
import { processImages } from '../runner/pipeline/process-images.ts';
import { ClassificationTask } from '../runner/tasks/classification-task.ts';
import { inferenceInputSource } from '../runner/pipeline/inputs.ts';

export class CliError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliError';
  }
}

export interface LocalRunOptions {
  checkpoint: string;
  image?: string | undefined;
  inputDir?: string | undefined;
  output: string;
  topK: number;
  batchSize: number;
}

export async function localRun(opts: LocalRunOptions, out: (line: string) => void): Promise<void> {
  if (Boolean(opts.image) === Boolean(opts.inputDir)) throw new CliError('give exactly one of --image or --input-dir');
  const store = new ObjectStore({ region: process.env.AWS_REGION ?? 'us-east-1', endpoint: process.env.S3_ENDPOINT });
  const local = (p: string) => (p.includes('://') ? p : resolve(p));
  let model;
  try {
    model = await loadModel(store, local(opts.checkpoint), {
      executionProviders: ['cpu'],
      intraOpNumThreads: availableParallelism(),
      expectedTask: 'image_classification',
    });
  } catch (err) {
    if (err instanceof ObjectNotFoundError) throw new CliError(`checkpoint not found: ${opts.checkpoint}`);
    throw new CliError(`cannot load checkpoint ${opts.checkpoint}: ${(err as Error).message}`);
  }
  try {
    const input: InputConfig = opts.image ? { image_path: local(opts.image) } : { dataset_path: local(opts.inputDir!) };
    if (
      'image_path' in input &&
      !(await store.read(input.image_path).then(
        () => true,
        () => false,
      ))
    )
      throw new CliError(`image not found: ${opts.image}`);
    const source = await inferenceInputSource(store, input, model.metadata.classNames).catch((err: Error) => {
      throw new CliError(err.message);
    });
    const results: ImageResult[] = [];
    await processImages(store, model, new ClassificationTask(model.metadata, source.classNames, undefined), source, {
      batchSize: opts.batchSize,
      decodeConcurrency: 4,
      onResult: (r) => void results.push(r),
    });
    results.sort((a, b) => a.image_index - b.image_index);
    if (opts.image) {
      const r = results[0]!;
      if (r.error) throw new CliError(`${opts.image}: ${r.error}`);
      out(`${opts.image}: ${r.predicted_label} (${(r.confidence! * 100).toFixed(1)}%)`);
      for (const p of r.predictions!.slice(0, opts.topK)) out(`  ${p.class_name.padEnd(20)} ${(p.confidence * 100).toFixed(2)}%`);
      return;
    }
    const failed = results.filter((r) => r.error).length;
    const file = resolve(opts.output);
    const payload = {
      checkpoint: opts.checkpoint,
      input_dir: opts.inputDir,
      class_names: model.metadata.classNames,
      total_images: results.length,
      failed_images: failed,
      results: results.map((r) => ({ ...r, predictions: r.predictions?.slice(0, opts.topK) ?? null })),
    };
    await writeFile(file, `${JSON.stringify(payload, null, 2)}\n`);
    for (const r of results)
      out(r.error ? `${r.image_path}: ERROR ${r.error}` : `${r.image_path}: ${r.predicted_label} (${(r.confidence! * 100).toFixed(1)}%)`);
    out(`${results.length} images, ${failed} failed; results written to ${file}`);
  } finally {
    await model.session.close();
  }
}
