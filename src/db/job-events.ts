// Job state changes as they happen: every state update NOTIFYs `kinfer_job_events` (job-store).
import { z } from 'zod';
import { JobKind, JobStatus } from '../contract/index.ts';
import type { Logger } from '../http/logger.ts';
import { JOB_EVENTS_CHANNEL } from './job-store.ts';
import { listenChannel, type ListenHooks } from './notifications.ts';

export const JobEvent = z.object({
  kind: JobKind,
  id: z.uuid(),
  status: JobStatus,
  processed_images: z.number().int().nullable().optional(),
  total_images: z.number().int().nullable().optional(),
});
export type JobEvent = z.infer<typeof JobEvent>;

export function listenJobEvents(url: string, onEvent: (event: JobEvent) => void, log: Logger, hooks: ListenHooks = {}): { stop(): Promise<void> } {
  return listenChannel(
    url,
    JOB_EVENTS_CHANNEL,
    (payload) => {
      const parsed = JobEvent.safeParse(payload);
      if (parsed.success) onEvent(parsed.data);
    },
    log,
    hooks,
  );
}

/**
 * Job events for a controller: each one enqueues its job, and listening again after a time of not
 * listening (a lost connection) enqueues every job, since what happened meanwhile was never heard.
 */
export function listenForReconciles(
  url: string,
  controller: { enqueueJob(id: string): void; enqueueAll(): void },
  log: Logger,
  opts: Pick<ListenHooks, 'heartbeatMs'> = {},
): { stop(): Promise<void> } {
  return listenJobEvents(url, (e) => controller.enqueueJob(e.id), log, { ...opts, onListening: () => controller.enqueueAll() });
}

/** What a subscriber of the hub is told. */
export interface JobEventSubscriber {
  onEvent(e: JobEvent): void;
  /** The hub stopped first (the process is shutting down: a stream ends, its client reconnects). */
  onStop?(): void;
  /**
   * The hub listens again after a time it did not (its connection was lost, or it had not
   * started): what happened meanwhile was never told, so the job is to be read again.
   */
  onResync?(): void;
}

/**
 * One LISTEN connection shared by every subscriber of a process (the API's server-sent events):
 * each gets the events of its job. With several controller replicas, each listens: a change made
 * through any replica (or by a runner's callback) reaches every subscriber.
 */
export class JobEventHub {
  readonly #subscribers = new Map<string, Set<JobEventSubscriber>>();
  readonly #listener: { stop(): Promise<void> };

  constructor(url: string, log: Logger, opts: Pick<ListenHooks, 'heartbeatMs'> = {}) {
    this.#listener = listenJobEvents(url, (e) => this.#subscribers.get(e.id)?.forEach((s) => s.onEvent(e)), log, {
      ...opts,
      onListening: () => {
        for (const set of this.#subscribers.values()) for (const s of set) s.onResync?.();
      },
    });
  }

  /** Tells `subscriber` of the job's events until the returned function is called. */
  subscribe(id: string, subscriber: JobEventSubscriber): () => void {
    const set = this.#subscribers.get(id) ?? new Set();
    set.add(subscriber);
    this.#subscribers.set(id, set);
    return () => {
      set.delete(subscriber);
      if (set.size === 0) this.#subscribers.delete(id);
    };
  }

  async stop(): Promise<void> {
    for (const set of [...this.#subscribers.values()]) for (const s of [...set]) s.onStop?.();
    await this.#listener.stop();
  }
}
