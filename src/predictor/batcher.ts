// Dynamic batching, as Triton's dynamic batcher and KServe's batcher do it: requests queue until
// `maxBatchSize` are waiting or the oldest has waited `maxQueueDelayMs`, then run as one batch.
// A batch in flight does not stop the next from forming (its images decode while the session
// runs the previous one).

export interface BatcherOptions {
  maxBatchSize: number;
  maxQueueDelayMs: number;
}

interface Waiting<T, R> {
  item: T;
  enqueuedAt: number;
  resolve: (r: Batched<R>) => void;
  reject: (e: unknown) => void;
}

/** A result with how it was batched. */
export interface Batched<R> {
  value: R;
  queueMs: number;
  batchSize: number;
}

export class DynamicBatcher<T, R> {
  readonly #o: BatcherOptions;
  readonly #run: (items: T[]) => Promise<R[]>;
  #queue: Array<Waiting<T, R>> = [];
  #timer: NodeJS.Timeout | undefined;

  /** `run` answers the items of one batch, in order (a rejection fails the whole batch). */
  constructor(opts: BatcherOptions, run: (items: T[]) => Promise<R[]>) {
    this.#o = { maxBatchSize: Math.max(1, opts.maxBatchSize), maxQueueDelayMs: Math.max(0, opts.maxQueueDelayMs) };
    this.#run = run;
  }

  get waiting(): number {
    return this.#queue.length;
  }

  submit(item: T): Promise<Batched<R>> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ item, enqueuedAt: performance.now(), resolve, reject });
      if (this.#queue.length >= this.#o.maxBatchSize) this.#flush();
      else this.#timer ??= setTimeout(() => this.#flush(), this.#o.maxQueueDelayMs);
    });
  }

  #flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#queue.splice(0, this.#o.maxBatchSize);
    if (this.#queue.length > 0) this.#timer = setTimeout(() => this.#flush(), this.#o.maxQueueDelayMs);
    if (batch.length === 0) return;
    const started = performance.now();
    this.#run(batch.map((w) => w.item)).then(
      (values) => {
        for (const [i, w] of batch.entries()) w.resolve({ value: values[i]!, queueMs: started - w.enqueuedAt, batchSize: batch.length });
      },
      (err: unknown) => {
        for (const w of batch) w.reject(err);
      },
    );
  }
}
