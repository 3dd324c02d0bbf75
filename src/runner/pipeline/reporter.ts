// Everything a job tells the outside while it runs: per-image results committed in batches (a
// part in storage, then the callback service: parts.ts), and throttled progress. One batch in
// flight at a time; the pipeline waits when a second batch is ready before the first is sent, so
// memory stays bounded.
import type { CallbackReply, ImageResult, ProgressPayload, ShardDonePayload, ShardDoneReply, ShardRef } from '../../contract/index.ts';
import type { ObjectStore } from '../io/object-store.ts';
import type { EvaluationRecord } from '../tasks/vision-task.ts';
import { writePart, type PartLine } from './parts.ts';

/**
 * Where a job's progress and per-image results go: the callback service (CallbackClient) for a
 * job, the terminal for `kinfer run` (the same pipeline, reported on the spot).
 */
export interface ProgressSink {
  progress(payload: ProgressPayload): Promise<CallbackReply | void>;
  imageResults(results: ImageResult[]): Promise<CallbackReply | void>;
  /** Sharded jobs only (the callback service). */
  shardDone?(shard: number, payload: ShardDonePayload): Promise<ShardDoneReply>;
}

/**
 * A batch is sent once it holds this much JSON, whatever its count: 300 detections with masks per
 * image make megabytes, and the callback service takes at most 8 MB a request.
 */
export const MAX_BATCH_BYTES = 4 * 2 ** 20;

export interface ReporterOptions {
  callbacks: ProgressSink;
  /** Where the parts go. */
  store: ObjectStore;
  artifactsUri: string;
  /** The job's images (every shard's). */
  total: number;
  /** This runner's shard of a sharded job; its progress then counts its own images. */
  shard?: ShardRef | undefined;
  /** What this shard committed before (a resumed runner). */
  resumed?: { processed: number; failed: number } | undefined;
  resultsBatchSize: number;
  progressEveryImages: number;
  progressIntervalMs: number;
}

export class JobReporter {
  readonly #o: ReporterOptions;
  #buffer: Array<PartLine & { resultJson: string }> = [];
  #bufferBytes = 0;
  #inFlight: Promise<unknown> = Promise.resolve();
  /** The first refusal of something sent in the background. */
  #refusal: { error: unknown } | undefined;
  #processed: number;
  #failed: number;
  #lastProgressAt = Date.now();
  #lastProgressCount: number;

  constructor(opts: ReporterOptions) {
    this.#o = opts;
    this.#processed = opts.resumed?.processed ?? 0;
    this.#failed = opts.resumed?.failed ?? 0;
    this.#lastProgressCount = this.#processed;
  }

  get processed(): number {
    return this.#processed;
  }

  get failed(): number {
    return this.#failed;
  }

  #progress(): ProgressPayload {
    return { processed_images: this.#processed, total_images: this.#o.total, failed_images: this.#failed, ...(this.#o.shard ? { shard: this.#o.shard } : {}) };
  }

  async started(): Promise<void> {
    await this.#o.callbacks.progress(this.#progress());
  }

  async add(result: ImageResult, record: EvaluationRecord | null): Promise<void> {
    // A refusal of what is in flight (the job cancelled, the callback service gone) stops the job
    // at the next image, not at the next batch.
    if (this.#refusal !== undefined) throw this.#refusal.error;
    this.#processed++;
    if (result.error !== null) this.#failed++;
    // The JSON of the result is what the callback takes; made once, for the size and the part.
    const resultJson = JSON.stringify(result);
    this.#buffer.push({ result, record, resultJson });
    this.#bufferBytes += resultJson.length;
    if (this.#buffer.length >= this.#o.resultsBatchSize || this.#bufferBytes >= MAX_BATCH_BYTES) await this.#flush();
    const now = Date.now();
    if (this.#processed - this.#lastProgressCount >= this.#o.progressEveryImages || now - this.#lastProgressAt >= this.#o.progressIntervalMs) {
      this.#lastProgressAt = now;
      this.#lastProgressCount = this.#processed;
      // Results go first, so that progress never counts images the API cannot list yet: the
      // progress follows them in the chain of what is in flight. Nothing here waits for either:
      // the pipeline used to, and the session then waited for its next batch until storage and
      // the callback service had answered (17-43 ms every 50 images in a detection run on
      // file:// storage).
      await this.#flush();
      const progress = this.#progress();
      this.#send(this.#inFlight.then(() => this.#o.callbacks.progress(progress)));
    }
  }

  /** Commits what is buffered and waits until every batch is stored and reported. */
  async finish(): Promise<void> {
    await this.#flush();
    await this.#inFlight;
  }

  /** On failure: stop without waiting for storage or the callback service. */
  abandon(): void {
    this.#inFlight.catch(() => undefined);
  }

  async #flush(): Promise<void> {
    if (this.#buffer.length === 0) return;
    await this.#inFlight;
    const batch = this.#buffer;
    this.#buffer = [];
    this.#bufferBytes = 0;
    // The part first: whatever the callback service holds can be read back by a resumed runner.
    this.#send(writePart(this.#o.store, this.#o.artifactsUri, batch).then(() => this.#o.callbacks.imageResults(batch.map((l) => l.result))));
  }

  /** What is in flight from now on; a refusal surfaces at the next add or finish, not as an unhandled rejection. */
  #send(call: Promise<unknown>): void {
    this.#inFlight = call;
    call.catch((error: unknown) => (this.#refusal ??= { error }));
  }
}
