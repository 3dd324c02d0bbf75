// The subprocess tier: each runner is a child process in its own process group, with only the
// contract's environment (the controller's database URL and signing key never reach it). Its
// output goes to `{logDir}/{job_id}.log`; the tail of stderr is kept to explain a crash.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { JobKind } from '../../contract/index.ts';
import type { Executor, RunnerExit } from './executor.ts';

const STDERR_TAIL_BYTES = 4096;
/** Host variables a Node runner legitimately needs. */
const PASSTHROUGH_ENV = ['PATH', 'HOME', 'TMPDIR', 'LANG', 'TZ', 'UV_THREADPOOL_SIZE', 'LOG_LEVEL', 'NODE_OPTIONS'];

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
  readonly #children = new Map<string, ChildProcess>();
  readonly #listeners: Array<(exit: RunnerExit) => void> = [];

  constructor(opts: SubprocessOptions) {
    this.#opts = opts;
  }

  get active(): number {
    return this.#children.size;
  }

  onExit(listener: (exit: RunnerExit) => void): void {
    this.#listeners.push(listener);
  }

  async start(kind: JobKind, jobId: string, runnerEnv: Record<string, string>): Promise<string> {
    await mkdir(this.#opts.logDir, { recursive: true });
    const env: Record<string, string> = {};
    for (const name of PASSTHROUGH_ENV) if (process.env[name] !== undefined) env[name] = process.env[name]!;
    Object.assign(env, runnerEnv);
    const [file, ...args] = this.#opts.command;
    const child = spawn(file!, args, { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const log = createWriteStream(join(this.#opts.logDir, `${jobId}.log`), { flags: 'a' });
    let tail = Buffer.alloc(0);
    child.stdout!.pipe(log, { end: false });
    child.stderr!.on('data', (chunk: Buffer) => {
      log.write(chunk);
      tail = Buffer.concat([tail, chunk]).subarray(-STDERR_TAIL_BYTES);
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    this.#children.set(jobId, child);
    child.once('close', (code, signal) => {
      this.#children.delete(jobId);
      log.end();
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      const stderr = tail.toString('utf8').trim();
      const reason = `runner ${how} without reporting completion${stderr ? `; stderr tail: ${stderr}` : ''}`;
      for (const listener of this.#listeners) listener({ kind, jobId, reason });
    });
    return `pid:${child.pid}`;
  }

  async stop(jobId: string, ref: string | null): Promise<void> {
    const child = this.#children.get(jobId);
    const pid = child?.pid ?? (ref && this.isAlive(ref) ? Number(ref.slice('pid:'.length)) : undefined);
    if (!pid) return;
    signalGroup(-pid, 'SIGTERM');
    const timer = setTimeout(() => signalGroup(-pid, 'SIGKILL'), this.#opts.stopGraceMs);
    timer.unref();
    child?.once('close', () => clearTimeout(timer));
  }

  isAlive(ref: string): boolean {
    const pid = Number(ref.replace(/^pid:/, ''));
    if (!Number.isInteger(pid) || pid <= 0) return false;
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }
}

function signalGroup(group: number, signal: NodeJS.Signals): void {
  try {
    process.kill(group, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}
