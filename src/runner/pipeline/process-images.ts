// The pipeline every task shares: read + decode images ahead (bounded), batch them, run the model
// in its worker, let the task interpret each row. Emits one ImageResult per image, including
// unreadable ones.
import { pMapIterable } from 'p-map';
import type { ImageResult } from '../../contract/index.ts';
import type { ObjectStore } from '../io/object-store.ts';
import type { LoadedModel } from '../model/load-model.ts';
import type { VisionTask } from '../tasks/vision-task.ts';
import type { XaiJob } from '../xai/xai-job.ts';
import type { Sample, SampleSource } from './inputs.ts';

export interface PipelineOptions {
  batchSize: number;
  decodeConcurrency: number;
  signal?: AbortSignal | undefined;
  onResult: (result: ImageResult) => void | Promise<void>;
  /** Explanations of the images it chooses (each result then carries `xai`, null when left out). */
  xai?: XaiJob | undefined;
}

export interface PipelineStats {
  processed: number;
  failed: number;
  preprocessMs: number;
  inferenceMs: number;
}

type Decoded<C> = { sample: Sample; ms: number } & (
  { tensor: Float32Array; context: C; bytes: Uint8Array | undefined; error?: never } | { tensor?: never; context?: never; bytes?: never; error: string }
);

export async function processImages<C>(
  store: ObjectStore,
  model: LoadedModel,
  task: VisionTask<C>,
  source: SampleSource,
  opts: PipelineOptions,
): Promise<PipelineStats> {
  const [h, w] = model.metadata.inputSize;
  const plane = 3 * h * w;
  const batchSize = model.fixedBatch ?? opts.batchSize;
  const stats: PipelineStats = { processed: 0, failed: 0, preprocessMs: 0, inferenceMs: 0 };

  const decode = async (sample: Sample): Promise<Decoded<C>> => {
    const started = performance.now();
    try {
      const bytes = await store.read(sample.uri);
      const { tensor, context } = await task.prepare(bytes, sample);
      // The explanation's overlay is drawn over the original image.
      return { sample, tensor, context, bytes: opts.xai ? bytes : undefined, ms: performance.now() - started };
    } catch (err) {
      return { sample, error: (err as Error).message, ms: performance.now() - started };
    }
  };

  const runBatch = async (batch: Decoded<C>[]) => {
    const rows = model.fixedBatch ?? batch.length;
    const input = new Float32Array(rows * plane);
    batch.forEach((d, i) => input.set(d.tensor!, i * plane));
    const { outputs, ms } = await model.session.run(input, [rows, 3, h, w]);
    stats.inferenceMs += ms;
    for (const [i, d] of batch.entries()) {
      const fields = await task.interpret(outputs, i, d.context as C, d.sample);
      const xai = opts.xai
        ? await opts.xai.explain({
            name: d.sample.name,
            bytes: d.bytes!,
            input: d.tensor!,
            outputs,
            row: i,
            fields,
            geometry: task.xaiGeometry(d.context as C),
            signal: opts.signal,
          })
        : undefined;
      stats.processed++;
      await opts.onResult({
        image_index: d.sample.index,
        image_path: d.sample.name,
        ...fields,
        ...(xai !== undefined ? { xai } : {}),
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
  let batch: Decoded<C>[] = [];
  for await (const d of decoded) {
    if (opts.signal?.aborted) break;
    stats.preprocessMs += d.ms;
    if (d.error !== undefined) {
      stats.failed++;
      await opts.onResult({
        image_index: d.sample.index,
        image_path: d.sample.name,
        ...task.unreadable(d.sample),
        ...(opts.xai ? { xai: null } : {}),
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
