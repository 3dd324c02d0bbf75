// Artifacts written beside the main loop (visualizations, masks): a few at a time, and the loop
// waits only when too many are queued, so drawing and uploading overlap inference without memory
// growing. A write that fails is logged and counted, never fatal: the job's results stand.
import pLimit from 'p-limit';
import type { Logger } from 'pino';

export class BackgroundWrites {
  readonly #writing: ReturnType<typeof pLimit>;
  readonly #preparing: ReturnType<typeof pLimit>;
  readonly #maxQueued: number;
  readonly #log: Logger;
  readonly #pending = new Set<Promise<void>>();
  failed = 0;

  constructor(log: Logger, opts: { concurrency?: number; prepareConcurrency?: number; maxQueued?: number } = {}) {
    // A write waits more than it works: a few hops through libuv's pool, each resumed by an event
    // loop that is busy decoding (file://: about 40 ms from start to end in a detection run), or
    // an S3 PUT's round trip. Two at a time held a fast runner back: the shape detector's test
    // run with pictures made 460-477 images/s with two, 511-525 with eight (787 without pictures);
    // to S3 behind a 10 ms relay each way, 81-83 with two, 248-254 with eight (709-712 without).
    this.#writing = pLimit(opts.concurrency ?? 8);
    // What a write's body costs to make (decoding an image to draw on, encoding a mask) is CPU and
    // a decoded image's memory: two at a time.
    this.#preparing = pLimit(opts.prepareConcurrency ?? 2);
    // Eight queued: each holds its body or what it is made of (a picture's JPEG or the image it is
    // drawn on, a class map). 32 once cost detection runs with pictures 25-30 MiB of peak RSS for
    // no speed (runner runs, 256 images).
    this.#maxQueued = opts.maxQueued ?? 8;
    this.#log = log;
  }

  /** Queues a write; resolves once there is room for more. */
  async add(what: string, write: () => Promise<void>): Promise<void> {
    const p: Promise<void> = this.#writing(write)
      .catch((err: Error) => {
        this.failed++;
        this.#log.warn({ err, artifact: what }, 'could not write an artifact');
      })
      .finally(() => this.#pending.delete(p));
    this.#pending.add(p);
    while (this.#pending.size > this.#maxQueued) await Promise.race(this.#pending);
  }

  /** Makes a write's body (within the write): at most `prepareConcurrency` at a time across all writes. */
  prepare<T>(make: () => Promise<T>): Promise<T> {
    return this.#preparing(make);
  }

  async flush(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
  }
}
