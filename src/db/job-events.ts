// Job state changes as they happen: every state update NOTIFYs `kinfer_job_events` (job-store).
import { z } from 'zod';
import { JobKind, JobStatus } from '../contract/index.ts';
import type { Logger } from '../http/logger.ts';
import { JOB_EVENTS_CHANNEL } from './job-store.ts';
import { listenChannel } from './notifications.ts';

export const JobEvent = z.object({ kind: JobKind, id: z.uuid(), status: JobStatus });
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
