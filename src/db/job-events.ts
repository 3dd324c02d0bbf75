// Job state changes as they happen: every state update NOTIFYs `kinfer_job_events` (job-store).
import { z } from 'zod';
import { JobKind, JobStatus } from '../contract/index.ts';
import type { Logger } from '../http/logger.ts';
import { JOB_EVENTS_CHANNEL } from './job-store.ts';
import { listenChannel } from './notifications.ts';

export const JobEvent = z.object({
  kind: JobKind,
  id: z.uuid(),
  status: JobStatus,
  processed_images: z.number().int().nullable().optional(),
  total_images: z.number().int().nullable().optional(),
});
export type JobEvent = z.infer<typeof JobEvent>;

export function listenJobEvents(url: string, onEvent: (event: JobEvent) => void, log: Logger): { stop(): Promise<void> } {
  return listenChannel(
    url,
    JOB_EVENTS_CHANNEL,
    (payload) => {
      const parsed = JobEvent.safeParse(payload);
      if (parsed.success) onEvent(parsed.data);
    },
    log,
  );
}

/**
 * One LISTEN connection shared by every subscriber of a process (the API's server-sent events):
 * each gets the events of its job. With several controller replicas, each listens: a change made
 * through any replica (or by a runner's callback) reaches every subscriber.
 */
export class JobEventHub {
  readonly #subscribers = new Map<string, Set<(e: JobEvent) => void>>();
  readonly #onStop = new Set<() => void>();
  readonly #listener: { stop(): Promise<void> };

  constructor(url: string, log: Logger) {
    this.#listener = listenJobEvents(url, (e) => this.#subscribers.get(e.id)?.forEach((fn) => fn(e)), log);
  }

  /**
   * Calls `fn` with each event of the job until the returned function is called; `onStop` when
   * the hub stops first (the process is shutting down: a stream ends, its client reconnects).
   */
  subscribe(id: string, fn: (e: JobEvent) => void, onStop: () => void = () => undefined): () => void {
    const set = this.#subscribers.get(id) ?? new Set();
    set.add(fn);
    this.#subscribers.set(id, set);
    this.#onStop.add(onStop);
    return () => {
      set.delete(fn);
      this.#onStop.delete(onStop);
      if (set.size === 0) this.#subscribers.delete(id);
    };
  }

  async stop(): Promise<void> {
    for (const fn of [...this.#onStop]) fn();
    await this.#listener.stop();
  }
}
