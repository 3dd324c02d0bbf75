// The runner's logger: JSON lines on stdout, each carrying the job and trace ids.
import { pino, type Logger } from 'pino';

export function runnerLogger(jobId: string | undefined, traceId: string | undefined): Logger {
  return pino({
    base: { component: 'runner', job_id: jobId ?? null, trace_id: traceId ?? null },
    level: process.env.LOG_LEVEL ?? 'info',
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}
