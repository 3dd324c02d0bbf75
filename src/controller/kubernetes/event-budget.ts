// How many Normal Events the controller writes: a burst of InferenceJobs would otherwise write
// one Event each (JobCreated), a fifth of the controller's API writes per InferenceJob. As
// client-go's event spam filter, Events past the budget are dropped; Warnings (a refused
// InferenceJob, a failed run) always go through, they are what `kubectl describe` is read for.
// And an Event the same as one written for the same object a moment ago is not written again: a
// reconcile that read an informer copy older than the status it had just written decides the
// same transition twice (client-go's correlator folds such repeats into a count).
import type { Logger } from '../../http/logger.ts';
import { TokenBucket } from '../../kube/token-bucket.ts';

/** Events remembered for repeats: client-go's correlator keeps 4,096. */
const MAX_REMEMBERED = 4096;

export interface EventBudgetOptions {
  qps: number;
  burst: number;
  log: Logger;
  /** Dropped Events are reported in one log line at most this often. */
  reportEveryMs?: number;
  /** An Event with the key of one written this recently is a repeat (default 10 minutes). */
  repeatWindowMs?: number;
  now?: () => number;
}

export class EventBudget {
  readonly #bucket: TokenBucket;
  readonly #o: EventBudgetOptions;
  readonly #now: () => number;
  #dropped = 0;
  #reportedAt = -Infinity;
  /** Key of each Event written -> when, oldest first; bounded. */
  readonly #written = new Map<string, number>();

  constructor(o: EventBudgetOptions) {
    this.#o = o;
    this.#now = o.now ?? (() => performance.now());
    this.#bucket = new TokenBucket(o.qps, o.burst, this.#now);
  }

  /**
   * Whether an Event of this type may be written now. `key` names what it says (its object and
   * reason): one already written within the repeat window is not written again.
   */
  allows(type: 'Normal' | 'Warning', key?: string): boolean {
    const now = this.#now();
    if (key !== undefined) {
      const at = this.#written.get(key);
      if (at !== undefined && now - at < (this.#o.repeatWindowMs ?? 600_000)) return false;
    }
    if (type === 'Warning' || this.#bucket.tryTake()) {
      if (key !== undefined) this.#remember(key, now);
      return true;
    }
    this.#dropped++;
    if (now - this.#reportedAt >= (this.#o.reportEveryMs ?? 30_000)) {
      this.#o.log.info({ dropped: this.#dropped }, 'Normal Events dropped by the event budget (KINFER_KUBE_EVENT_QPS)');
      this.#reportedAt = now;
      this.#dropped = 0;
    }
    return false;
  }

  #remember(key: string, now: number): void {
    this.#written.delete(key);
    this.#written.set(key, now);
    if (this.#written.size > MAX_REMEMBERED) this.#written.delete(this.#written.keys().next().value!);
  }
}
