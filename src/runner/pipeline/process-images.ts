// The pipeline every task shares: read + decode images ahead (bounded), batch them, run the model
// in its worker, let the task interpret each row. Emits one ImageResult per image, including
// unreadable ones.
import { pMapIterable } from 'p-map';
import type { ImageResult } from '../../contract/index.ts';
import { pixelBuffers } from '../image/buffer-pool.ts';
import type { ObjectStore } from '../io/object-store.ts';
import { partSizes } from '../inference/session-split.ts';
import type { WorkerOutput } from '../inference/worker-protocol.ts';
import type { LoadedModel } from '../model/load-model.ts';
import type { EvaluationRecord, VisionTask } from '../tasks/vision-task.ts';
import type { XaiJob } from '../xai/xai-job.ts';
import type { Sample, SampleSource } from './inputs.ts';
import { ReadAhead } from './read-ahead.ts';

export interface PipelineOptions {
  batchSize: number;
  decodeConcurrency: number;
  /**
   * Images read ahead, in flight at once (object storage GETs, file reads), apart from decoding:
   * what a remote store gives one read at a time is bound by its round trip, not by the CPU.
   * At least `decodeConcurrency` (its default).
   */
  readConcurrency?: number | undefined;
  signal?: AbortSignal | undefined;
  /** Each image's result, in listing order, with its evaluation record (null when not scoring). */
  onResult: (result: ImageResult, record: EvaluationRecord | null) => void | Promise<void>;
  /** Explanations of the images it chooses (each result then carries `xai`, null when left out). */
  xai?: XaiJob | undefined;
}

export interface PipelineStats {
  processed: number;
  failed: number;
  preprocessMs: number;
  inferenceMs: number;
}

/** A batch's outputs: each part's, from its row `first` of the batch on; `ms` the batch's time in the sessions. */
interface BatchOutput {
  parts: Array<{ outputs: WorkerOutput[]; first: number }>;
  ms: number;
}

/** An image's bytes as read, or why they could not be; `ms` the read's time. */
type Read = { sample: Sample; ms: number } & ({ bytes: Uint8Array; error?: never } | { bytes?: never; error: string });

type Decoded<C> = { sample: Sample; ms: number } & (
  | { tensor: Float32Array | Uint8Array; context: C; bytes: Uint8Array | undefined; error?: never }
  | { tensor?: never; context?: never; bytes?: never; error: string }
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

  const ahead = new ReadAhead(opts.decodeConcurrency, opts.readConcurrency ?? opts.decodeConcurrency);
  const read = async (sample: Sample): Promise<Read> => {
    await ahead.start();
    const started = performance.now();
    try {
      const bytes = await store.read(sample.uri);
      ahead.read(bytes.length);
      return { sample, bytes, ms: performance.now() - started };
    } catch (err) {
      return { sample, error: (err as Error).message, ms: performance.now() - started };
    }
  };

  const decode = async (r: Read): Promise<Decoded<C>> => {
    ahead.taken();
    const { sample } = r;
    if (r.error !== undefined) return { sample, error: r.error, ms: r.ms };
    const started = performance.now();
    try {
      const { tensor, context } = await task.prepare(r.bytes, sample);
      // The explanation's overlay is drawn over the original image.
      return { sample, tensor, context, bytes: opts.xai ? r.bytes : undefined, ms: r.ms + performance.now() - started };
    } catch (err) {
      return { sample, error: (err as Error).message, ms: r.ms + performance.now() - started };
    }
  };

  const unreadable = async (d: Decoded<C>) => {
    stats.failed++;
    const { fields, record } = task.unreadable(d.sample);
    await opts.onResult(
      { image_index: d.sample.index, image_path: d.sample.name, ...fields, ...(opts.xai ? { xai: null } : {}), timings: null, error: d.error! },
      record,
    );
  };

  /**
   * Hands the decoded images to the session workers as one batch (each queues its own): in
   * contiguous parts, one a session, run at once; whole, to the least busy session, where the
   * model's batch is fixed or the batch is one image.
   */
  const startBatch = async (batch: Decoded<C>[]): Promise<BatchOutput> => {
    if (batch.length === 0) return { parts: [], ms: 0 };
    const rows = model.fixedBatch ?? batch.length;
    const uint8 = model.inputLayout === 'uint8-nhwc';
    const sizes = partSizes(rows, model.fixedBatch ? 1 : model.sessions.length);
    const starts = sizes.map((_, p) => sizes.slice(0, p).reduce((a, b) => a + b, 0));
    // The least busy first: a batch of one part goes where no run waits (the first, on a tie).
    const sessions = [...model.sessions].sort((a, b) => a.pending - b.pending);
    const parts = await Promise.all(
      sizes.map((size, p) => {
        const session = sessions[p]!;
        const input = uint8 ? session.inputArray('uint8', size * plane) : session.inputArray('float32', size * plane);
        const images = batch.slice(starts[p], starts[p]! + size);
        images.forEach((d, i) => input.set(d.tensor!, i * plane));
        // A fixed-batch model's rows past the images: zeros, not what an earlier batch left.
        input.fill(0, images.length * plane);
        return session.run(input, uint8 ? [size, h, w, 3] : [size, 3, h, w]);
      }),
    );
    // The batch's time in the sessions: its parts ran side by side.
    return { parts: parts.map((run, p) => ({ outputs: run.outputs, first: starts[p]! })), ms: Math.max(...parts.map((run) => run.ms)) };
  };

  /** Waits for the batch's outputs, then reports every image of `pending` (`batch`: its decoded ones) in listing order. */
  const reportBatch = async (pending: Decoded<C>[], batch: Decoded<C>[], running: Promise<BatchOutput>) => {
    const { parts, ms } = await running;
    stats.inferenceMs += ms;
    let i = -1;
    for (const d of pending) {
      if (d.error !== undefined) {
        await unreadable(d);
        continue;
      }
      i++;
      // The part the image ran in, and its row there.
      const part = parts.findLast((p) => p.first <= i)!;
      const outputs = part.outputs;
      const row = i - part.first;
      const { fields, record } = await task.interpret(outputs, row, d.context as C, d.sample);
      const xai = opts.xai
        ? await opts.xai.explain({
            name: d.sample.name,
            bytes: d.bytes!,
            // Explanations run on a float model (loadModel): its input is the float tensor.
            input: d.tensor as Float32Array,
            outputs,
            row,
            fields,
            geometry: task.xaiGeometry(d.context as C),
            signal: opts.signal,
          })
        : undefined;
      stats.processed++;
      await opts.onResult(
        {
          image_index: d.sample.index,
          image_path: d.sample.name,
          ...fields,
          ...(xai !== undefined ? { xai } : {}),
          timings: { preprocess_ms: d.ms, inference_ms: ms / batch.length },
          error: null,
        },
        record,
      );
    }
    // Every row is interpreted (results, records and pictures hold copies, pictures are drawn): the
    // batch's outputs and decoded inputs are freed now, not when a collection finds them (a
    // detection batch's outputs alone are 11 MB, and a runner whose own threads yield to inference
    // collects late), or its letterbox canvases reused. Explanations may keep the input for later:
    // not then.
    if (!opts.xai)
      release(
        parts.flatMap((p) => p.outputs),
        batch.map((d) => d.tensor!),
      );
  };

  // Reading and decoding are two stages, each in listing order: reads wait on the store, decodes
  // on the CPU. One stage of four read and decoded 155-162 images/s from an S3 server 10 ms away
  // (the shape detector's test run); 32 reads in flight and four decodes make 412-427 there, and
  // 640-690 from local files. How many are read ahead: `ahead` (a byte budget). Reads still
  // waiting there when the pipeline stops early are dropped with it, unread.
  const reads = pMapIterable(source.samples(), read, { concurrency: ahead.most, backpressure: ahead.most });
  const decoded = pMapIterable(reads, decode, {
    concurrency: opts.decodeConcurrency,
    // Keep the next batch decoding while the current one is in the worker.
    backpressure: Math.max(opts.decodeConcurrency, batchSize * 2),
  });
  // Results go out in listing order (an unreadable image waits for the batch before it), so
  // that what a job has committed is always a prefix of its images: where a resumed runner goes on.
  // Two batches at most are with the worker: while one runs, the next waits in its queue, so the
  // session never idles while this thread reports the batch before (issue 16: it did, about 10%).
  let reporting: Promise<void> = Promise.resolve();
  const next = async (pending: Decoded<C>[]) => {
    const batch = pending.filter((d) => d.error === undefined);
    const running = startBatch(batch);
    // Awaited by its report; when the report before it fails first (a stopped runner's callback),
    // nothing awaits it, and were it to fail too (the worker gone, an inference error) that would
    // be an unhandled rejection: the process ending with exit code 1 instead of the job's outcome.
    running.catch(() => undefined);
    await reporting;
    reporting = reportBatch(pending, batch, running);
    // Awaited before the next batch or at the end; a failure meanwhile is not unhandled.
    reporting.catch(() => undefined);
  };
  let pending: Decoded<C>[] = [];
  let decodedInBatch = 0;
  for await (const d of decoded) {
    if (opts.signal?.aborted) break;
    stats.preprocessMs += d.ms;
    if (d.error !== undefined && pending.length === 0) {
      // In listing order: after the batches before it.
      await reporting;
      await unreadable(d);
      continue;
    }
    pending.push(d);
    if (d.error === undefined) decodedInBatch++;
    if (decodedInBatch === batchSize) {
      await next(pending);
      pending = [];
      decodedInBatch = 0;
    }
  }
  if (pending.length > 0 && !opts.signal?.aborted) await next(pending);
  await reporting;
  return stats;
}

/**
 * Frees a batch's memory at once: the outputs' buffers (each one the worker's transfer, whole and
 * ours), and the inputs' where a view spans a buffer of its own: a letterbox canvas goes back to
 * `pixelBuffers` for the next images, anything else is freed. A view into a shared buffer (Node's
 * pool of small Buffers) is left alone: the others' data is there.
 */
function release(outputs: WorkerOutput[], inputs: ArrayBufferView[]): void {
  for (const { data } of outputs) if (!data.detached) data.transfer(0);
  for (const v of inputs) {
    const b = v.buffer;
    if (b instanceof ArrayBuffer && !b.detached && v.byteOffset === 0 && v.byteLength === b.byteLength && !pixelBuffers.give(b)) b.transfer(0);
  }
}
