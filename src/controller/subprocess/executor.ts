// What the reconciler needs from a tier: start a runner for a job, stop it, and say what is running.
import type { JobKind } from '../../contract/index.ts';

export interface RunnerExit {
  kind: JobKind;
  jobId: string;
  /** Why the runner ended, for a job that ended without reporting done. */
  reason: string;
}

export interface Executor {
  /** Stored in the job's `executor` column. */
  readonly name: string;
  /** Runners currently alive. */
  readonly active: number;
  /** Starts the runner; returns its handle (stored as `executor_ref`). */
  start(kind: JobKind, jobId: string, env: Record<string, string>): Promise<string>;
  /**
   * Stops a job's runner (by its stored handle when it is not this process's child): SIGTERM,
   * then SIGKILL after a grace period; `force` kills at once (a stopped process ignores SIGTERM).
   */
  stop(jobId: string, ref: string | null, opts?: { force?: boolean }): Promise<void>;
  /** Is the runner behind a stored handle still alive (after a controller restart)? */
  isAlive(ref: string): boolean;
  onExit(listener: (exit: RunnerExit) => void): void;
}
