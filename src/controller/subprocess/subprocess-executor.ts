// The subprocess tier: each runner is a child process in its own process group, with only the
// contract's environment (the controller's database URL and signing key never reach it). Its
// stdout goes straight to `{logDir}/{job_id}.log` and stderr to `{job_id}.stderr.log` (files,
// not pipes through the controller, so a runner outlives a controller restart); the tail of
// stderr explains a crash.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import { RUNNER_COMPILE_CACHE_ENV, RUNNER_PROCESS_ENV, type JobKind } from '../../contract/index.ts';
import { isProcessAlive, procStat, signalGroup } from '../../process/local-processes.ts';
import type { Executor, RunnerExit } from './executor.ts';

const STDERR_TAIL_BYTES = 4096;
/** Host variables a Node runner legitimately needs. */
const PASSTHROUGH_ENV = ['PATH', 'HOME', 'TMPDIR', 'LANG', 'TZ', 'UV_THREADPOOL_SIZE', 'LOG_LEVEL', 'NODE_OPTIONS', ...RUNNER_COMPILE_CACHE_ENV];

export interface SubprocessOptions {
  /** argv of the runner, e.g. [process.execPath, '/app/src/runner/main.ts']. */
  command: string[];
  logDir: string;
  /** How long a runner has to stop after SIGTERM before SIGKILL. */
  stopGraceMs: number;
}

export class SubprocessExecutor implements Executor {
  readonly name = 'subprocess';
  readonly #opts: SubprocessOptions;
  /** Per job, its runners by shard. */
  readonly #children = new Map<string, Map<number, { child: ChildProcess; ref: string; kind: JobKind }>>();
  readonly #listeners: Array<(exit: RunnerExit) => void> = [];
  /** Runners asked to stop and not gone yet: each settles when it exits or is killed. */
  readonly #stopping = new Set<Promise<void>>();

  constructor(opts: SubprocessOptions) {
    this.#opts = opts;
  }

  get active(): number {
    return this.#children.size;
  }

  runningJobs(): Array<{ kind: JobKind; jobId: string }> {
    return [...this.#children].map(([jobId, runners]) => ({ kind: runners.values().next().value!.kind, jobId }));
  }

  onExit(listener: (exit: RunnerExit) => void): void {
    this.#listeners.push(listener);
  }

  async start(kind: JobKind, jobId: string, runnerEnv: Record<string, string>, shard = 0): Promise<string> {
    await mkdir(this.#opts.logDir, { recursive: true });
    const env: Record<string, string> = {};
    for (const name of PASSTHROUGH_ENV) if (process.env[name] !== undefined) env[name] = process.env[name]!;
    Object.assign(env, RUNNER_PROCESS_ENV, runnerEnv);
    const sharded = Number(runnerEnv.SHARD_COUNT ?? 1) > 1;
    if (sharded) env.SHARD_INDEX = String(shard);
    const [file, ...args] = this.#opts.command;
    const stem = sharded ? `${jobId}-shard-${shard}` : jobId;
    const stderrPath = join(this.#opts.logDir, `${stem}.stderr.log`);
    const out = openSync(join(this.#opts.logDir, `${stem}.log`), 'a');
    const err = openSync(stderrPath, 'a');
    let child: ChildProcess;
    try {
      child = spawn(file!, args, { env, detached: true, stdio: ['ignore', out, err] });
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', resolve);
        child.once('error', reject);
      });
    } finally {
      closeSync(out);
      closeSync(err);
    }
    const runners = this.#children.get(jobId) ?? new Map<number, { child: ChildProcess; ref: string; kind: JobKind }>();
    this.#children.set(jobId, runners);
    runners.set(shard, { child, ref: runnerRef(child.pid!), kind });
    child.once('exit', (code, signal) => {
      if (runners.get(shard)?.child === child) runners.delete(shard);
      const othersAlive = runners.size;
      if (othersAlive === 0 && this.#children.get(jobId) === runners) this.#children.delete(jobId);
      void tailOf(stderrPath).then((stderr) => {
        const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
        const reason = `${sharded ? `shard ${shard}: ` : ''}runner ${how} without reporting completion${stderr ? `; stderr tail: ${stderr}` : ''}`;
        for (const listener of this.#listeners) listener({ kind, jobId, shard, code, signal, othersAlive, reason });
      });
    });
    return this.#refOf(jobId);
  }

  /** Every live runner of the job: `pid:<pid>@<start>` joined by commas. */
  #refOf(jobId: string): string {
    return [...(this.#children.get(jobId)?.values() ?? [])].map((r) => r.ref).join(',');
  }

  async stop(jobId: string, ref: string | null, opts: { force?: boolean } = {}): Promise<void> {
    const mine = [...(this.#children.get(jobId)?.values() ?? [])];
    const pids =
      mine.length > 0
        ? mine.map((r) => r.child.pid!)
        : refsOf(ref)
            .filter((r) => this.isAlive(r))
            .map((r) => Number(/^pid:(\d+)/.exec(r)![1]));
    for (const pid of pids) {
      if (opts.force) {
        signalGroup(pid, 'SIGKILL');
        continue;
      }
      signalGroup(pid, 'SIGTERM');
      const child = mine.find((r) => r.child.pid === pid)?.child;
      const stopped = this.#killAfterGrace(pid, child).finally(() => this.#stopping.delete(stopped));
      this.#stopping.add(stopped);
    }
  }

  /**
   * Waits for the runners asked to stop, SIGKILL at the end of their grace. The controller stops
   * with it: a runner it asked to stop (a cancelled job) is left no one to kill it otherwise, and
   * retries its termination report for TERMINATION_REPORT_SECONDS (20) when the callback service
   * stops too. Runners not asked to stop go on: the next controller adopts them.
   */
  async settle(): Promise<void> {
    await Promise.all([...this.#stopping]);
  }

  /** Resolves when the runner is gone: its exit, or SIGKILL once the grace period is over. */
  #killAfterGrace(pid: number, child: ChildProcess | undefined): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        signalGroup(pid, 'SIGKILL');
        done();
      }, this.#opts.stopGraceMs);
      timer.unref();
      // Not a child of this controller (adopted after a restart): looked for every 100 ms.
      const poll = child ? undefined : setInterval(() => !isProcessAlive(pid) && done(), 100).unref();
      const done = () => {
        clearTimeout(timer);
        clearInterval(poll);
        resolve();
      };
      if (child && (child.exitCode !== null || child.signalCode !== null)) done();
      else child?.once('exit', done);
    });
  }

  isAlive(ref: string): boolean {
    return refsOf(ref).some((one) => {
      const parsed = /^pid:(\d+)(?:@(\d+))?$/.exec(one);
      return parsed ? isProcessAlive(Number(parsed[1]), parsed[2]) : false;
    });
  }
}

function refsOf(ref: string | null): string[] {
  return ref ? ref.split(',').filter(Boolean) : [];
}

/** `pid:<pid>@<start time>` where /proc is available, so a reused pid is not taken for the runner. */
function runnerRef(pid: number): string {
  const stat = procStat(pid);
  return stat ? `pid:${pid}@${stat.startTime}` : `pid:${pid}`;
}

async function tailOf(path: string): Promise<string> {
  const file = await open(path, 'r');
  try {
    const { size } = await file.stat();
    const length = Math.min(size, STDERR_TAIL_BYTES);
    const { buffer } = await file.read(Buffer.alloc(length), 0, length, size - length);
    return buffer.toString('utf8').trim();
  } finally {
    await file.close();
  }
}
