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
  stallSeconds: number;
  /** The callback service's readiness URL: runners are not failed as stalled while it is down. */
  callbackReadyUrl?: string;
  envFor: (kind: JobKind, job: Job) => Record<string, string>;
}): Promise<Tier> {
  const executor = new SubprocessExecutor({ command: opts.command, logDir: opts.logDir, stopGraceMs: 10_000 });
  const reconciler = new Reconciler({
    store: opts.store,
    executor,
    log: opts.log,
    maxConcurrent: opts.maxConcurrent,
    intervalMs: 2000,
    stallSeconds: opts.stallSeconds,
    lingerSeconds: 30,
    callbackReady: opts.callbackReadyUrl ? () => isReady(opts.callbackReadyUrl!) : undefined,
    envFor: opts.envFor,
  });
  await reconciler.start();
  return {
    onCreated: async () => reconciler.kick(),
    onCancelled: async (_kind, job) => executor.stop(job.id, job.executor_ref),
    // A finished job's runner is gone: nothing is left to remove.
    onDeleted: async () => undefined,
    // Runners are started from this process: nothing outside it to wait for.
    ready: async () => undefined,
    stop: async () => {
      await reconciler.stop();
      await executor.settle();
    },
  };
}

async function isReady(url: string): Promise<boolean> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(2_000) })).ok;
  } catch {
    return false;
  }
}
