// A work queue as controllers use it (client-go's workqueue, small): a key is processed by one
// worker at a time, keys added while queued are merged, failures requeue with per-key
// exponential backoff, and `addAfter` schedules a later look (e.g. a start-up timeout).
export interface WorkQueueOptions {
  workers: number;
  baseDelayMs: number;
  maxDelayMs: number;
  onError: (key: string, err: unknown) => void;
}

export class WorkQueue {
  readonly #o: WorkQueueOptions;
  readonly #handler: (key: string) => Promise<void>;
  readonly #queue: string[] = [];
  readonly #queued = new Set<string>();
  readonly #processing = new Set<string>();
  /** Keys added while being processed: run once more afterwards. */
  readonly #dirty = new Set<string>();
  readonly #failures = new Map<string, number>();
  readonly #timers = new Map<string, NodeJS.Timeout>();
  #active = 0;
  #stopped = false;

  constructor(handler: (key: string) => Promise<void>, opts: WorkQueueOptions) {
    this.#handler = handler;
    this.#o = opts;
  }

  add(key: string): void {
    if (this.#stopped) return;
    if (this.#processing.has(key)) {
      this.#dirty.add(key);
      return;
    }
    if (this.#queued.has(key)) return;
    this.#queued.add(key);
    this.#queue.push(key);
    this.#pump();
  }

  addAfter(key: string, delayMs: number): void {
    if (this.#stopped || this.#timers.has(key)) return;
    const timer = setTimeout(() => {
      this.#timers.delete(key);
      this.add(key);
    }, delayMs);
    timer.unref();
    this.#timers.set(key, timer);
  }

  get length(): number {
    return this.#queue.length + this.#active;
  }

  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers.values()) clearTimeout(t);
    this.#timers.clear();
    this.#queue.length = 0;
  }

  #pump(): void {
    while (this.#active < this.#o.workers && this.#queue.length > 0) {
      const key = this.#queue.shift()!;
      this.#queued.delete(key);
      this.#processing.add(key);
      this.#active++;
      void this.#handler(key)
        .then(
          () => this.#failures.delete(key),
          (err) => {
            this.#o.onError(key, err);
            const n = (this.#failures.get(key) ?? 0) + 1;
            this.#failures.set(key, n);
            this.addAfter(key, Math.min(this.#o.baseDelayMs * 2 ** (n - 1), this.#o.maxDelayMs));
          },
        )
        .finally(() => {
          this.#processing.delete(key);
          this.#active--;
          if (this.#dirty.delete(key)) this.add(key);
          this.#pump();
        });
    }
  }
}
