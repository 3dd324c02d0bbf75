// The classification pipeline: read + decode images ahead (bounded), batch them, run the model in
// its worker, rank the classes. Emits one ImageResult per image, including unreadable ones.
import { pMapIterable } from 'p-map';
import type { ImageResult } from '../../contract/index.ts';
import { preprocessClassification } from '../classification/preprocess.ts';
import { toProbabilities, topK } from '../classification/postprocess.ts';
import type { ObjectStore } from '../io/object-store.ts';
import type { LoadedModel } from '../model/classifier.ts';
import type { Sample, SampleSource } from './inputs.ts';

export const TOP_K = 5;

export interface PipelineOptions {
  batchSize: number;
  decodeConcurrency: number;
  signal?: AbortSignal | undefined;
  onResult: (result: ImageResult) => void | Promise<void>;
}

export interface PipelineStats {
  processed: number;
  failed: number;
  preprocessMs: number;
  inferenceMs: number;
}

type Decoded = { sample: Sample; ms: number } & ({ tensor: Float32Array; error?: never } | { tensor?: never; error: string });

export async function classifyImages(store: ObjectStore, model: LoadedModel, source: SampleSource, opts: PipelineOptions): Promise<PipelineStats> {
  const { metadata } = model;
  const [h, w] = metadata.inputSize;
  const plane = 3 * h * w;
  const batchSize = model.fixedBatch ?? opts.batchSize;
  const stats: PipelineStats = { processed: 0, failed: 0, preprocessMs: 0, inferenceMs: 0 };

  const decode = async (sample: Sample): Promise<Decoded> => {
    const started = performance.now();
    try {
      const bytes = await store.read(sample.uri);
      const tensor = await preprocessClassification(bytes, metadata);
      return { sample, tensor, ms: performance.now() - started };
    } catch (err) {
      return { sample, error: (err as Error).message, ms: performance.now() - started };
    }
  };

  const labelsOf = (sample: Sample) =>
    sample.trueClassId === undefined ? {} : { true_class_id: sample.trueClassId, true_label: source.classNames[sample.trueClassId] ?? null };

  const runBatch = async (batch: Decoded[]) => {
    const rows = model.fixedBatch ?? batch.length;
    const input = new Float32Array(rows * plane);
    batch.forEach((d, i) => input.set(d.tensor!, i * plane));
    const { outputs, ms } = await model.session.run(input, [rows, 3, h, w]);
    stats.inferenceMs += ms;
    const scores = new Float32Array(outputs[0]!.data);
    const numClasses = scores.length / rows;
    for (const [i, d] of batch.entries()) {
      const ranked = topK(toProbabilities(scores.subarray(i * numClasses, (i + 1) * numClasses)), TOP_K, source.classNames);
      const best = ranked[0]!;
      stats.processed++;
      await opts.onResult({
        image_index: d.sample.index,
        image_path: d.sample.name,
        predicted_class_id: best.class_id,
        predicted_label: best.class_name,
        confidence: best.confidence,
        predictions: ranked,
        ...labelsOf(d.sample),
        ...(d.sample.trueClassId === undefined ? {} : { is_correct: best.class_id === d.sample.trueClassId }),
        timings: { preprocess_ms: d.ms, inference_ms: ms / batch.length },
        error: null,
      });
    }
  };

  const decoded = pMapIterable(source.samples(), decode, {
    concurrency: opts.decodeConcurrency,
    // Keep the next batch decoding while the current one is in the worker.
    backpressure: Math.max(opts.decodeConcurrency, batchSize * 2),
  });
  let batch: Decoded[] = [];
  for await (const d of decoded) {
    if (opts.signal?.aborted) break;
    stats.preprocessMs += d.ms;
    if (d.error !== undefined) {
      stats.failed++;
      await opts.onResult({
        image_index: d.sample.index,
        image_path: d.sample.name,
        predicted_class_id: null,
        predicted_label: null,
        confidence: null,
        predictions: null,
        ...labelsOf(d.sample),
        ...(d.sample.trueClassId === undefined ? {} : { is_correct: null }),
        timings: null,
        error: d.error,
      });
      continue;
    }
    batch.push(d);
    if (batch.length === batchSize) {
      await runBatch(batch);
      batch = [];
    }
  }
  if (batch.length > 0 && !opts.signal?.aborted) await runBatch(batch);
  return stats;
}
