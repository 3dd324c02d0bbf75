// A bound on the images a predictor replica holds at once (KINFER_PREDICT_MAX_IN_FLIGHT), as
// Triton's max_queue_size bounds its queue. Past it, a request is refused at once with 503 and
// Retry-After, before its images are read: under a burst, a replica answers what it can and sheds
// the rest (a load balancer or the client tries again, perhaps elsewhere), instead of queueing
// without limit until its latency is useless and its memory runs out.
import { HttpError } from '../http/errors.ts';

export class InFlightLimit {
  readonly #max: number;
  #now = 0;

  /** `max` images at once; 0: no limit. */
  constructor(max: number) {
    this.#max = max;
  }

  /**
   * Runs `work` holding room for `count` images, or throws 503 predictor_overloaded without
   * running it. A request larger than the limit is taken when nothing else is in flight (it could
   * never be otherwise).
   */
  async hold<T>(count: number, work: () => Promise<T>): Promise<T> {
    if (this.#max > 0 && this.#now > 0 && this.#now + count > this.#max)
      throw new HttpError(
        'predictor_overloaded',
        `${this.#now} images are in flight on this replica, at most ${this.#max} (KINFER_PREDICT_MAX_IN_FLIGHT); retry`,
        {
          retry_after_seconds: 1,
        },
      );
    this.#now += count;
    try {
      return await work();
    } finally {
      this.#now -= count;
    }
  }
}
