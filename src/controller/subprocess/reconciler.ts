// The control loop of the subprocess tier. Each pass reads the world (pending jobs, live
// runners), decides what to start, then writes: claims a job, mints its token, starts its runner.
// It also acts for runners that cannot report: a runner that exits without `done` fails its job
// (recorded when the database answers again, if it is away when the runner exits), a runner
// that stops reporting is stopped and its job failed, and after a restart, jobs whose runner is
// gone are failed instead of left "running".
import { isTerminal, type JobErrorCode, type JobKind } from '../../contract/index.ts';
import type { Job, JobStore } from '../../db/job-store.ts';
import type { Logger } from '../../http/logger.ts';
import type { Executor, RunnerExit } from './executor.ts';

export interface ReconcilerOptions {
  store: JobStore;
  executor: Executor;
  log: Logger;
  envFor: (kind: JobKind, job: Job) => Record<string, string>;
  maxConcurrent: number;
  /** Safety-net interval; work is normally triggered by `kick()`. */
  intervalMs: number;
  /** A runner that sends nothing (progress, heartbeat) for this long is stopped and its job failed. */
  stallSeconds: number;
  /**
   * A runner still alive this long after its job ended (it reported done and then hung before
   * exiting, or was frozen) is stopped: it would otherwise hold one of `maxConcurrent` forever.
   */
  lingerSeconds: number;
  /**
   * Is the callback service taking reports? While it is not (and for `stallSeconds` after), a
   * silent runner is explained by the outage it is riding out, and is not stalled.
   */
  callbackReady?: () => Promise<boolean>;
}

export class Reconciler {
  readonly #o: ReconcilerOptions;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  /** Runners left by a previous controller process: watched by polling, as they are not our children. */
  readonly #adopted = new Map<string, { kind: JobKind; ref: string }>();
  /** Runner exits not yet recorded: kept until the database takes them (it may be away). */
  readonly #exits = new Map<string, { kind: JobKind; reason: string }>();
  /** Runners that crashed, to start again while their job's backoff_limit allows; each job's restarts so far. */
  readonly #crashes: RunnerExit[] = [];
  readonly #restarts = new Map<string, number>();
  /** When the callback service was last seen not taking reports (0: never). */
  #callbackDownAt = 0;
  /** Runners alive after their job ended: since when they were first seen so. */
  readonly #lingering = new Map<string, number>();
  /** Set by `stop()`: no pass starts after it. */
  #stopped = false;

  constructor(opts: ReconcilerOptions) {
    this.#o = opts;
    opts.executor.onExit((exit) => {
      const { kind, jobId, code, reason, othersAlive } = exit;
      // Exit 0: the job was reported done, or this shard finished and another reports the job.
      if (code === 0 && othersAlive > 0) return;
      // Exit 1 or 2: the runner reported its failure, or its configuration is invalid: restarting
      // cannot help. Anything else is a crash (killed, out of memory, a lost process): started
      // again while the job's backoff limit allows, and it resumes after its committed images.
      if (code === 0 || code === 1 || code === 2) this.#exits.set(jobId, { kind, reason });
      else this.#crashes.push(exit);
      this.kick();
    });
  }

  async start(): Promise<void> {
    await this.#adoptOrFailOrphans();
    this.#timer = setInterval(() => this.kick(), this.#o.intervalMs);
    this.#timer.unref();
    this.kick();
  }

  /**
   * No more passes, and the pass in progress done: one left running could act on a job after its
   * controller said it stopped. Nor does a kick start one after it (a runner's exit, a job created
   * while the REST door is still open): a pass then could claim a job and be cut off by the
   * database closing before its runner starts. What happens meanwhile is the next controller's:
   * it claims the pending jobs, and adopts or fails the runners it finds.
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.idle();
  }

  /** Runs a pass now, or right after the current one: passes never overlap. */
  kick(): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = this.#pass()
      .catch((err) => this.#o.log.error({ err }, 'reconcile pass failed'))
      .finally(() => {
        this.#running = undefined;
        if (this.#again) {
          this.#again = false;
          this.kick();
        }
      });
  }

  /** Waits for the pass in progress (tests and shutdown). */
  async idle(): Promise<void> {
    while (this.#running) await this.#running;
  }

  async #pass(): Promise<void> {
    const { store, executor, maxConcurrent } = this.#o;
    while (this.#crashes.length > 0) {
      await this.#restartOrFail(this.#crashes[0]!);
      this.#crashes.shift();
    }
    for (const [jobId, { kind, reason }] of this.#exits) {
      await this.#failIfActive(kind, jobId, reason, 'RUNNER_EXITED');
      this.#exits.delete(jobId);
    }
    // A runner from a previous controller that has ended is said to have ended, before its
    // silence (it may be long past the stall timeout by now) is taken for a stall.
    for (const [jobId, { kind, ref }] of this.#adopted) {
      if (executor.isAlive(ref)) continue;
      this.#adopted.delete(jobId);
      await this.#failIfActive(kind, jobId, 'runner process ended without reporting completion (it was started by a previous controller)', 'RUNNER_EXITED');
    }
    await this.#stopStalled();
    await this.#stopLingering();
    const free = maxConcurrent - executor.active - this.#adopted.size;
    if (free <= 0) return;
    const candidates = [...(await store.oldestPending('test_run', free)), ...(await store.oldestPending('inference_job', free))]
      .sort((a, b) => a.created_at.getTime() - b.created_at.getTime())
      .slice(0, free);
    for (const { kind, id } of candidates) {
      const job = await store.claim(kind, id, executor.name);
      if (!job) continue;
      await this.#launch(kind, job);
    }
  }

  /** A crashed runner: started again (same shard) while the job's backoff limit allows, else its job fails with why. */
  async #restartOrFail(crash: RunnerExit): Promise<void> {
    const { kind, jobId, shard, reason } = crash;
    const job = await this.#o.store.get(kind, jobId);
    if (!job || isTerminal(job.status)) {
      this.#restarts.delete(jobId);
      return;
    }
    const used = this.#restarts.get(jobId) ?? 0;
    if (used >= job.backoff_limit) {
      this.#restarts.delete(jobId);
      if (job.backoff_limit === 0) await this.#failIfActive(kind, jobId, reason, 'RUNNER_EXITED');
      else
        await this.#failIfActive(kind, jobId, `${reason}; the runner crashed ${used + 1} times (backoff_limit ${job.backoff_limit})`, 'BACKOFF_LIMIT_EXCEEDED');
      return;
    }
    this.#restarts.set(jobId, used + 1);
    this.#o.log.warn(
      { job_id: jobId, shard, restart: used + 1, backoff_limit: job.backoff_limit, reason },
      'runner crashed; starting it again (it resumes after its committed images)',
    );
    await this.#launch(kind, job, [shard]);
  }

  /** Starts the job's runners: one per shard (all of them, or those named). */
  async #launch(kind: JobKind, job: Job, shards = Array.from({ length: job.parallelism }, (_, i) => i)): Promise<void> {
    const log = this.#o.log.child({ job_id: job.id, trace_id: job.trace_id });
    try {
      let ref = '';
      for (const shard of shards) ref = await this.#o.executor.start(kind, job.id, this.#o.envFor(kind, job), shard);
      await this.#o.store.setExecutorRef(kind, job.id, ref);
      log.info({ kind, executor: this.#o.executor.name, ref, ...(job.parallelism > 1 ? { shards } : {}) }, 'runner started');
    } catch (err) {
      log.error({ err }, 'runner could not start');
      await this.#o.store.failIfActive(kind, job.id, `runner could not start: ${(err as Error).message}`, 'RUNNER_NOT_STARTED');
    }
  }

  /** Runners alive but silent (stopped, hung, partitioned away): stopped, and their jobs failed with why. */
  async #stopStalled(): Promise<void> {
    const { store, executor, stallSeconds, log } = this.#o;
    if (this.#o.callbackReady && !(await this.#o.callbackReady().catch(() => false))) this.#callbackDownAt = Date.now();
    // Silence is measured only over time the reports had somewhere to go.
    if (Date.now() - this.#callbackDownAt < stallSeconds * 1000) return;
    for (const kind of ['test_run', 'inference_job'] as const) {
      for (const job of await store.stalled(kind, executor.name, stallSeconds)) {
        const reason = `no progress for ${stallSeconds} s: the runner stopped reporting (no progress or heartbeat) and was stopped`;
        const outcome = await store.failIfActive(kind, job.id, reason, 'RUNNER_STALLED');
        if (outcome.outcome !== 'applied') continue;
        log.warn({ job_id: job.id, ref: job.executor_ref }, 'runner stalled; stopping it');
        this.#adopted.delete(job.id);
        // Its exit is already accounted for: the job failed with the reason above.
        await executor.stop(job.id, job.executor_ref, { force: true });
      }
    }
  }

  /**
   * Runners alive `lingerSeconds` after their job ended (or was deleted): stopped, freeing their
   * slot. Those adopted from a previous controller too: they hold a slot as long as they live.
   */
  async #stopLingering(): Promise<void> {
    const { store, executor, lingerSeconds, log } = this.#o;
    const runners = [
      ...executor.runningJobs().map((j) => ({ ...j, ref: null })),
      ...[...this.#adopted].map(([jobId, { kind, ref }]) => ({ kind, jobId, ref })),
    ];
    const active = new Set<string>();
    for (const kind of new Set(runners.map((j) => j.kind))) for (const job of await store.activeFor(kind, executor.name)) active.add(job.id);
    const now = Date.now();
    // Only what lingers now is remembered: a runner gone, or a job active again, starts over.
    const before = new Map(this.#lingering);
    this.#lingering.clear();
    for (const { jobId, ref } of runners) {
      if (active.has(jobId)) continue;
      const since = before.get(jobId) ?? now;
      this.#lingering.set(jobId, since);
      if (now - since < lingerSeconds * 1000) continue;
      this.#lingering.delete(jobId);
      log.warn({ job_id: jobId, seconds: Math.round((now - since) / 1000), ...(ref ? { ref } : {}) }, 'runner still alive after its job ended; stopping it');
      // An adopted one keeps its slot until a pass sees it gone.
      await executor.stop(jobId, ref);
    }
  }

  async #failIfActive(kind: JobKind, jobId: string, reason: string, code: JobErrorCode): Promise<void> {
    const outcome = await this.#o.store.failIfActive(kind, jobId, reason, code);
    if (outcome.outcome === 'applied') this.#o.log.warn({ job_id: jobId, reason }, 'job failed: runner ended without reporting');
  }

  /** After a restart: a runner still alive keeps running (it reports by itself); one that is gone fails its job. */
  async #adoptOrFailOrphans(): Promise<void> {
    const { store, executor, log } = this.#o;
    for (const kind of ['test_run', 'inference_job'] as const) {
      for (const job of await store.activeFor(kind, executor.name)) {
        if (!job.executor_ref) {
          await store.release(kind, job.id);
        } else if (!executor.isAlive(job.executor_ref)) {
          await this.#failIfActive(kind, job.id, 'runner process lost: the controller restarted and the runner is no longer running', 'RUNNER_LOST');
        } else {
          this.#adopted.set(job.id, { kind, ref: job.executor_ref });
          log.warn({ job_id: job.id, ref: job.executor_ref }, 'runner from a previous controller is still alive; its callbacks will finish the job');
        }
      }
    }
  }
}
