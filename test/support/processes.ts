import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

export interface CommandResult {
  /** Exit status; a spawn error (e.g. ENOENT) as its code string. */
  code: number | string;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion, never rejecting: the exit status says how it went. */
export function runCommand(file: string, args: string[], opts: { stdin?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = execFile(file, args, { env: opts.env, cwd: opts.cwd, maxBuffer: 16 * 2 ** 20 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number | string }).code ?? 1) : 0, stdout, stderr }),
    );
    if (opts.stdin !== undefined) child.stdin!.end(opts.stdin);
  });
}

/** Pids of processes whose environment has NAME=value (Linux /proc). */
export function pidsWithEnv(name: string, value: string): number[] {
  const needle = `${name}=${value}`;
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0').includes(needle)) pids.push(Number(entry));
    } catch {
      // gone, or not ours
    }
  }
  return pids;
}

export { isProcessAlive as alive } from '../../src/process/local-processes.ts';

const signalAll = (pids: number[], signal: NodeJS.Signals) => {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // gone meanwhile
    }
  }
};

/**
 * Runs processes in slow motion until `check` finds what it looks for: each round lets them run
 * for `runMs`, stops them all (SIGSTOP), and asks `check` while none of them can move. A moment
 * that can pass between two polls of processes running freely (a shard between its first
 * progress report and its last image) is caught this way. Returns the answer with every process
 * stopped; `resume` continues them, all but those it is told to leave.
 */
export async function inSlowMotion<T>(
  pids: () => number[],
  check: () => Promise<T | undefined>,
  o: { what: string; runMs: number; timeoutMs: number },
): Promise<{ found: T; resume(except?: number[]): void }> {
  const deadline = Date.now() + o.timeoutMs;
  for (;;) {
    signalAll(pids(), 'SIGCONT');
    await new Promise((r) => setTimeout(r, o.runMs));
    const stopped = pids();
    signalAll(stopped, 'SIGSTOP');
    const found = await check().catch(() => undefined);
    if (found !== undefined)
      return {
        found,
        resume: (except = []) =>
          signalAll(
            stopped.filter((p) => !except.includes(p)),
            'SIGCONT',
          ),
      };
    if (Date.now() > deadline) {
      signalAll(stopped, 'SIGCONT');
      throw new Error(`timed out waiting for ${o.what}`);
    }
  }
}
