// How many Normal Events the controller writes: a burst of InferenceJobs would otherwise write
// one Event each (JobCreated), a fifth of the controller's API writes per InferenceJob. As
// client-go's event spam filter, Events past the budget are dropped; Warnings (a refused
// InferenceJob, a failed run) always go through, they are what `kubectl describe` is read for.
import type { Logger } from '../../http/logger.ts';
import { TokenBucket } from '../../kube/token-bucket.ts';

export interface EventBudgetOptions {
  qps: number;
  burst: number;
  log: Logger;
  /** Dropped Events are reported in one log line at most this often. */
  reportEveryMs?: number;
  now?: () => number;
}

export class EventBudget {
  readonly #bucket: TokenBucket;
  readonly #o: EventBudgetOptions;
  readonly #now: () => number;
  #dropped = 0;
  #reportedAt = -Infinity;

  constructor(o: EventBudgetOptions) {
    this.#o = o;
    this.#now = o.now ?? (() => performance.now());
    this.#bucket = new TokenBucket(o.qps, o.burst, this.#now);
  }

  /** Whether an Event of this type may be written now. */
  allows(type: 'Normal' | 'Warning'): boolean {
    if (type === 'Warning' || this.#bucket.tryTake()) return true;
    this.#dropped++;
    const now = this.#now();
    if (now - this.#reportedAt >= (this.#o.reportEveryMs ?? 30_000)) {
      this.#o.log.info({ dropped: this.#dropped }, 'Normal Events dropped by the event budget (KINFER_KUBE_EVENT_QPS)');
      this.#reportedAt = now;
      this.#dropped = 0;
    }
    return false;
  }
}
