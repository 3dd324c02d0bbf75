// Everything a job tells the outside while it runs: per-image results in callback batches and in
// images.jsonl, and throttled progress. One flush in flight at a time; the pipeline waits when a
// second batch is ready before the first is sent, so memory stays bounded.
import { once } from 'node:events';
import type { CallbackReply, ImageResult, ProgressPayload } from '../../contract/index.ts';
import type { ObjectWriter } from '../io/object-store.ts';

/**
 * Where a job's progress and per-image results go: the callback service (CallbackClient) for a
 * job, the terminal for `kinfer run` (the same pipeline, reported on the spot).
 */
export interface ProgressSink {
  progress(payload: ProgressPayload): Promise<CallbackReply | void>;
  imageResults(results: ImageResult[]): Promise<CallbackReply | void>;
}

/**
 * A batch is sent once it holds this much JSON, whatever its count: 300 detections with masks per
 * image make megabytes, and the callback service takes at most 8 MB a request.
 */
export const MAX_BATCH_BYTES = 4 * 2 ** 20;

export interface ReporterOptions {
  callbacks: ProgressSink;
  imagesFile: ObjectWriter;
  total: number;
  resultsBatchSize: number;
  progressEveryImages: number;
  progressIntervalMs: number;
}

export class JobReporter {
  readonly #o: ReporterOptions;
  #buffer: ImageResult[] = [];
  #bufferBytes = 0;
  #inFlight: Promise<unknown> = Promise.resolve();
  #processed = 0;
  #failed = 0;
  #lastProgressAt = Date.now();
  #lastProgressCount = 0;

  constructor(opts: ReporterOptions) {
    this.#o = opts;
  }

  get processed(): number {
    return this.#processed;
  }

  get failed(): number {
    return this.#failed;
  }

  async started(): Promise<void> {
    await this.#o.callbacks.progress({ processed_images: 0, total_images: this.#o.total, failed_images: 0 });
  }

  async add(result: ImageResult): Promise<void> {
    this.#processed++;
    if (result.error !== null) this.#failed++;
    const { stream } = this.#o.imagesFile;
    const line = `${JSON.stringify(result)}\n`;
    if (!stream.write(line)) await once(stream, 'drain');
    this.#buffer.push(result);
    this.#bufferBytes += line.length;
    if (this.#buffer.length >= this.#o.resultsBatchSize || this.#bufferBytes >= MAX_BATCH_BYTES) await this.#flush();
    const now = Date.now();
    if (this.#processed - this.#lastProgressCount >= this.#o.progressEveryImages || now - this.#lastProgressAt >= this.#o.progressIntervalMs) {
      this.#lastProgressAt = now;
      this.#lastProgressCount = this.#processed;
      // Results go first, so that progress never counts images the API cannot list yet.
      await this.#flush();
      await this.#inFlight;
      await this.#o.callbacks.progress({ processed_images: this.#processed, total_images: this.#o.total, failed_images: this.#failed });
    }
  }

  /** Sends what is buffered, closes images.jsonl and waits until both are durable. */
  async finish(): Promise<void> {
    await this.#flush();
    await this.#inFlight;
    this.#o.imagesFile.stream.end();
    await this.#o.imagesFile.done;
  }

  /** On failure: stop writing without waiting for storage or the callback service. */
  abandon(): void {
    // The upload fails once its stream is destroyed: nobody waits for it any more.
    this.#o.imagesFile.done.catch(() => undefined);
    this.#o.imagesFile.stream.destroy();
    this.#inFlight.catch(() => undefined);
  }

  async #flush(): Promise<void> {
    if (this.#buffer.length === 0) return;
    await this.#inFlight;
    const batch = this.#buffer;
    this.#buffer = [];
    this.#bufferBytes = 0;
    this.#inFlight = this.#o.callbacks.imageResults(batch);
    // Surface a refusal at the next add/finish rather than as an unhandled rejection.
    this.#inFlight.catch(() => undefined);
  }
}
