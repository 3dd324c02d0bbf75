// GET /api/v1/{test-runs|inference-jobs}/{id}/events: a job's life as server-sent events, fed by
// Postgres LISTEN/NOTIFY (every change of status NOTIFYs, and progress at each whole percent), so
// that it works whichever controller replica or runner made the change:
//   event: status    the job as GET returns it, first, then on each change of status
//   event: progress  {processed_images, total_images, progress_percent} at each whole percent the
//                    runner reaches (each report while the total is unknown)
//   event: done      the finished job (metrics included); the stream then ends
// A comment line every 15 s keeps proxies from closing a quiet stream.
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
  const send = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  let closed = false;
  let lastStatus: string | undefined;
  // Events are read in order, one at a time: a `done` is never overtaken by a late `progress`.
  let queue = Promise.resolve();
  const finish = async () => {
    const final = await o.store.get(o.kind, o.job.id);
    if (final && !closed) send('done', o.present(final));
    stop();
    res.end();
  };
  const onEvent = (e: { status: string; processed_images?: number | null | undefined; total_images?: number | null | undefined }) => {
    queue = queue.then(async () => {
      if (closed) return;
      if (isTerminal(e.status as Job['status'])) return finish();
      if (e.status !== lastStatus) {
        lastStatus = e.status;
        const now = await o.store.get(o.kind, o.job.id);
        if (now && !closed) send('status', o.present(now));
        return;
      }
      const processed = e.processed_images ?? 0;
      const total = e.total_images ?? null;
      send('progress', { processed_images: processed, total_images: total, progress_percent: total ? (100 * processed) / total : null });
    });
  };
  // Subscribed before the first read: nothing between the read and the subscription is missed.
  const unsubscribe = o.hub.subscribe(o.job.id, {
    onEvent,
    onStop: () => {
      stop();
      res.end();
    },
    // Events the hub could not hear (its connection was lost) are read as they left the job.
    onResync: () => {
      void o.store.get(o.kind, o.job.id).then(
        (now) => {
          // Its status, or where its progress is now; nothing for a job with no progress yet.
          if (now && (now.status !== lastStatus || now.processed_images > 0))
            onEvent({ status: now.status, processed_images: now.processed_images, total_images: now.total_images });
        },
        () => undefined,
      );
    },
  });
  const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS);
  const stop = () => {
    closed = true;
    clearInterval(heartbeat);
    unsubscribe();
  };
  req.on('close', stop);
  const current = await o.store.get(o.kind, o.job.id);
  if (!current) {
    stop();
    res.end();
    return;
  }
  lastStatus = current.status;
  send('status', o.present(current));
  if (isTerminal(current.status)) onEvent({ status: current.status });
}
