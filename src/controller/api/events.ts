// GET /api/v1/{test-runs|inference-jobs}/{id}/events: a job's life as server-sent events, fed by
// Postgres LISTEN/NOTIFY (every change of status NOTIFYs, and progress at each whole percent), so
// that it works whichever controller replica or runner made the change:
//   event: status    the job as GET returns it, first, then on each change of status
//   event: progress  {processed_images, total_images, progress_percent} at each whole percent the
//                    runner reaches (each report while the total is unknown)
//   event: done      the finished job (metrics included); the stream then ends
// A comment line every 15 s keeps proxies from closing a quiet stream.
// A stream can also end without `done`: the controller stopping, or the job unreadable (the
// database gone). A client opens it again, as an EventSource does by itself; it starts with `status`.
import type { Request, Response } from 'express';
import { isTerminal, type JobKind } from '../../contract/index.ts';
import type { JobEventHub } from '../../db/job-events.ts';
import type { Job, JobStore } from '../../db/job-store.ts';

const HEARTBEAT_MS = 15_000;

export async function streamJobEvents(
  req: Request,
  res: Response,
  o: { kind: JobKind; job: Job; store: JobStore; hub: JobEventHub; present: (job: Job) => Record<string, unknown> },
): Promise<void> {
  res.status(200).set({ 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
  res.flushHeaders();
  let closed = false;
  // Nothing is written once the stream is over: a write after `end` is an uncaught error in Node,
  // which would take the whole controller down (the job ending while its first read is under way).
  const send = (event: string, data: unknown) => {
    if (!closed && !res.writableEnded) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };
  let lastStatus: string | undefined;
  // Events are handled in order, one at a time (a `done` is never overtaken by a late `progress`),
  // and only after the first `status`: what arrives during the first read waits for it.
  let started!: () => void;
  let queue = new Promise<void>((resolve) => (started = resolve));
  const enqueue = (step: () => Promise<void>) => {
    queue = queue.then(async () => {
      if (closed) return;
      try {
        await step();
      } catch {
        // The job could not be read (the database blinked): the stream ends, and an EventSource
        // client reconnects, reading it again, instead of waiting on a stream that has stalled.
        end();
      }
    });
  };
  const finish = async () => {
    const final = await o.store.get(o.kind, o.job.id);
    if (final) send('done', o.present(final));
    end();
  };
  const handle = async (e: { status: string; processed_images?: number | null | undefined; total_images?: number | null | undefined }) => {
    if (isTerminal(e.status as Job['status'])) return finish();
    if (e.status !== lastStatus) {
      lastStatus = e.status;
      const now = await o.store.get(o.kind, o.job.id);
      if (now) send('status', o.present(now));
      return;
    }
    const processed = e.processed_images ?? 0;
    const total = e.total_images ?? null;
    send('progress', { processed_images: processed, total_images: total, progress_percent: total ? (100 * processed) / total : null });
  };
  // Subscribed before the first read: nothing between the read and the subscription is missed.
  const unsubscribe = o.hub.subscribe(o.job.id, {
    onEvent: (e) => enqueue(() => handle(e)),
    onStop: end,
    // Events the hub could not hear (its connection was lost) are read as they left the job: its
    // status, or where its progress is now (nothing for a job with no progress yet).
    onResync: () =>
      enqueue(async () => {
        const now = await o.store.get(o.kind, o.job.id);
        if (now && (now.status !== lastStatus || now.processed_images > 0))
          await handle({ status: now.status, processed_images: now.processed_images, total_images: now.total_images });
      }),
  });
  const heartbeat = setInterval(() => {
    if (!res.writableEnded) res.write(': keep-alive\n\n');
  }, HEARTBEAT_MS);
  function stop() {
    closed = true;
    clearInterval(heartbeat);
    unsubscribe();
  }
  function end() {
    stop();
    res.end();
  }
  req.on('close', stop);
  let current: Job | null;
  try {
    current = await o.store.get(o.kind, o.job.id);
  } catch {
    current = null; // as above: the stream ends, the client reconnects
  } finally {
    // Whatever came meanwhile is handled now, after the first status (or not at all: closed).
    started();
  }
  if (!current) return end();
  lastStatus = current.status;
  send('status', o.present(current));
  if (isTerminal(current.status)) enqueue(finish);
}
