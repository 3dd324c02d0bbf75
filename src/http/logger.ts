// Service logger: JSON lines. Lines about a request carry its trace_id, lines about a job its
// job_id too (child loggers add them; the base has none, so keys are never duplicated).
import { pino, type Logger } from 'pino';

export function serviceLogger(service: string): Logger {
  return pino({
    base: { service },
    level: process.env.LOG_LEVEL ?? 'info',
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}

export type { Logger };
