import { execFile, spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

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

/**
 * A command started in the background, stdin closed: its output so far, and its exit code once
 * its output is read to the end ('close', not 'exit', which can come before the last chunk).
 */
export function startCommand(file: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}) {
  const child = spawn(file, args, { env: opts.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const closed = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return { child, stdout: () => stdout, stderr: () => stderr, closed };
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

/**
 * An empty home and temporary folder under `dir` for one process (its HOME and TMPDIR), and what
 * the process left in them: files it writes outside its own are seen.
 */
export function ownHomeAndTmp(dir: string): { env: { HOME: string; TMPDIR: string }; left: () => { home: string[]; tmp: string[] } } {
  const home = join(dir, 'home');
  const tmp = join(dir, 'tmp');
  mkdirSync(home);
  mkdirSync(tmp);
  return { env: { HOME: home, TMPDIR: tmp }, left: () => ({ home: readdirSync(home), tmp: readdirSync(tmp) }) };
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

/**
 * A shard of a job part-way through (images committed, not finished) and its runner's pid, found
 * with the job's runners in slow motion (`inSlowMotion`): returned with them all stopped, so none
 * can finish before the caller kills it. `shardEnv` is the variable that tells a runner's shard
 * (SHARD_INDEX in the subprocess tier, JOB_COMPLETION_INDEX in an Indexed Job's Pods).
 */
export async function shardPartWay(
  db: { query(sql: string, params: unknown[]): Promise<{ rows: any[] }> },
  jobId: string,
  shardEnv: 'SHARD_INDEX' | 'JOB_COMPLETION_INDEX',
  o: {
    timeoutMs: number;
    seen?: (what: string) => void;
    /**
     * Whether the shard has images that no part in storage holds yet, asked while its runner is
     * stopped. A part is written before it is reported, so a runner stopped between the two has
     * committed more than the database says: its last part, and then nothing is left to resume.
     */
    leftToWrite?: (shard: number) => Promise<boolean>;
  },
): Promise<{ found: { shard: number; pid: number }; resume(except?: number[]): void }> {
  const finished = async (shard: number) =>
    (await db.query('SELECT finished_at FROM job_shards WHERE job_id = $1 AND shard = $2', [jobId, shard])).rows[0].finished_at !== null;
  return inSlowMotion(
    () => pidsWithEnv('JOB_ID', jobId),
    async () => {
      const shards = await db.query('SELECT shard, processed_images, finished_at IS NOT NULL AS finished FROM job_shards WHERE job_id = $1 ORDER BY shard', [
        jobId,
      ]);
      const runners = pidsWithEnv('JOB_ID', jobId);
      o.seen?.(`shards ${JSON.stringify(shards.rows)}, runner pids ${JSON.stringify(runners)}`);
      for (const { shard } of shards.rows.filter((r) => !r.finished && r.processed_images > 0)) {
        const pid = runners.find((p) => pidsWithEnv(shardEnv, String(shard)).includes(p));
        if (pid === undefined) continue;
        // Its last report may have been in flight when it stopped (the callback service is not
        // stopped): it lands within the pause, and then the shard is not part-way through.
        await new Promise((r) => setTimeout(r, 300));
        if (await finished(shard)) continue;
        if (o.leftToWrite && !(await o.leftToWrite(shard))) continue;
        return { shard: shard as number, pid };
      }
      return undefined;
    },
    { what: 'a shard part-way through', runMs: 30, timeoutMs: o.timeoutMs },
  );
}
