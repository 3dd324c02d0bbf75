// The subprocess tier: the reconciler starts runners as local child processes.
import type { JobKind } from '../../contract/index.ts';
import type { Job, JobStore } from '../../db/job-store.ts';
import type { Logger } from '../../http/logger.ts';
import { Reconciler } from './reconciler.ts';
import type { Tier } from '../tier.ts';
import { SubprocessExecutor } from './subprocess-executor.ts';

export async function startSubprocessTier(opts: {
  store: JobStore;
  log: Logger;
  command: string[];
  logDir: string;
  maxConcurrent: number;
  envFor: (kind: JobKind, job: Job) => Record<string, string>;
}): Promise<Tier> {
  const executor = new SubprocessExecutor({ command: opts.command, logDir: opts.logDir, stopGraceMs: 10_000 });
  const reconciler = new Reconciler({ store: opts.store, executor, log: opts.log, maxConcurrent: opts.maxConcurrent, intervalMs: 2000, envFor: opts.envFor });
  await reconciler.start();
  return {
    onCreated: async () => reconciler.kick(),
    onCancelled: async (_kind, job) => executor.stop(job.id, job.executor_ref),
    stop: async () => reconciler.stop(),
  };
}
