// Per-caller limits on submissions: a rate (a sliding minute) and a number of active jobs. Both
// answer 429 with Retry-After, so that a client backs off instead of failing.
import { HttpError } from '../../http/errors.ts';

export interface SubmitLimits {
  perMinute: number;
  maxActiveJobs: number;
}

export class SubmitLimiter {
  readonly #limits: SubmitLimits;
  readonly #recent = new Map<string, number[]>();

  constructor(limits: SubmitLimits) {
    this.#limits = limits;
  }

  /** Counts a submission by `subject` now, or throws the 429 that says when to come back. */
  take(subject: string, activeJobs: number, now = Date.now()): void {
    if (activeJobs >= this.#limits.maxActiveJobs) {
      throw new HttpError(
        'quota_exceeded',
        `${subject} has ${activeJobs} active jobs, the most allowed (KINFER_MAX_ACTIVE_JOBS_PER_USER); wait for one to finish`,
        {
          retry_after_seconds: 30,
        },
      );
    }
    const window = (this.#recent.get(subject) ?? []).filter((t) => now - t < 60_000);
    if (window.length >= this.#limits.perMinute) {
      const retry = Math.max(1, Math.ceil((window[0]! + 60_000 - now) / 1000));
      throw new HttpError('rate_limited', `${subject} submitted ${window.length} jobs in the last minute, the most allowed (KINFER_SUBMITS_PER_MINUTE)`, {
        retry_after_seconds: retry,
      });
    }
    window.push(now);
    this.#recent.set(subject, window);
  }
}
