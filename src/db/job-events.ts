// Job state changes as they happen: every state update NOTIFYs `kinfer_job_events` (job-store),
// and this listens on a dedicated connection, reconnecting after errors.
import pg from 'pg';
import { z } from 'zod';
import { JobKind, JobStatus } from '../contract/index.ts';
import type { Logger } from '../http/logger.ts';
import { JOB_EVENTS_CHANNEL } from './job-store.ts';

export const JobEvent = z.object({ kind: JobKind, id: z.uuid(), status: JobStatus });
export type JobEvent = z.infer<typeof JobEvent>;

export function listenJobEvents(url: string, onEvent: (event: JobEvent) => void, log: Logger): { stop(): Promise<void> } {
  let client: pg.Client | undefined;
  let stopped = false;
  const connect = async () => {
    if (stopped) return;
    const c = new pg.Client({ connectionString: url });
    c.on('notification', (msg) => {
      const parsed = JobEvent.safeParse(JSON.parse(msg.payload ?? 'null'));
      if (parsed.success) onEvent(parsed.data);
    });
    c.on('error', (err) => {
      log.warn({ err: err.message }, 'job event listener lost its connection; reconnecting');
      void c.end().catch(() => undefined);
      if (client === c) client = undefined;
      setTimeout(() => void connect(), 1000).unref();
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${JOB_EVENTS_CHANNEL}`);
      client = c;
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'job event listener cannot connect; retrying');
      setTimeout(() => void connect(), 1000).unref();
    }
  };
  void connect();
  return {
    async stop() {
      stopped = true;
      await client?.end().catch(() => undefined);
    },
  };
}
