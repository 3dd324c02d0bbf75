// Artifacts written beside the main loop (visualizations, masks): a few at a time, and the loop
// waits only when too many are queued, so drawing and uploading overlap inference without memory
// growing. A write that fails is logged and counted, never fatal: the job's results stand.
import pLimit from 'p-limit';
import type { Logger } from 'pino';

export class BackgroundWrites {
  readonly #limit: ReturnType<typeof pLimit>;
  readonly #maxQueued: number;
  readonly #log: Logger;
  readonly #pending = new Set<Promise<void>>();
  failed = 0;

  constructor(log: Logger, opts: { concurrency?: number; maxQueued?: number } = {}) {
    this.#limit = pLimit(opts.concurrency ?? 2);
    // Eight queued: each may hold a decoded picture (a 640x480 one is 0.9 MB), and drawing runs at
    // the pipeline's lower priority (yield-to-inference.ts), so a long queue fills. 32 cost
    // detection runs with pictures 25-30 MiB of peak RSS for no speed (runner runs, 256 images).
    this.#maxQueued = opts.maxQueued ?? 8;
    this.#log = log;
  }

  /** Queues a write; resolves once there is room for more. */
  async add(what: string, write: () => Promise<void>): Promise<void> {
    const p: Promise<void> = this.#limit(write)
      .catch((err: Error) => {
        this.failed++;
        this.#log.warn({ err, artifact: what }, 'could not write an artifact');
      })
      .finally(() => this.#pending.delete(p));
    this.#pending.add(p);
    while (this.#pending.size > this.#maxQueued) await Promise.race(this.#pending);
  }

  async flush(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
  }
}
