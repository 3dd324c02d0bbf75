// What the reconciler needs from a tier: start a runner for a job, stop it, and say what is running.
import type { JobKind } from '../../contract/index.ts';

export interface RunnerExit {
  kind: JobKind;
  jobId: string;
  /** The shard the runner ran (0 for a job of one shard). */
  shard: number;
  /** Its exit code, or null when a signal ended it. */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The job's runners still alive after this one. */
  othersAlive: number;
  /** Why the runner ended, for a job that ended without reporting done. */
  reason: string;
}

export interface Executor {
  /** Stored in the job's `executor` column. */
  readonly name: string;
  /** Jobs with a runner alive. */
  readonly active: number;
  /** Which jobs those are (this process's runners). */
  runningJobs(): Array<{ kind: JobKind; jobId: string }>;
  /**
   * Starts the runner of a job's shard (0 when the job has one), or starts it again after a
   * crash; returns the job's handle (stored as `executor_ref`), which covers all its runners.
   */
  start(kind: JobKind, jobId: string, env: Record<string, string>, shard?: number): Promise<string>;
  /**
   * Stops a job's runners (by its stored handle when it is not this process's child): SIGTERM,
   * then SIGKILL after a grace period; `force` kills at once (a stopped process ignores SIGTERM).
   */
  stop(jobId: string, ref: string | null, opts?: { force?: boolean }): Promise<void>;
  /** Is a runner behind a stored handle still alive (after a controller restart)? */
  isAlive(ref: string): boolean;
  onExit(listener: (exit: RunnerExit) => void): void;
}
