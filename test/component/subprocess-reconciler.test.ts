// The subprocess tier's reconciler in-process on the real Postgres, with a FAKE executor in place
// of child processes: it claims pending jobs up to its limit, and fails with the right code the
// jobs whose runner could not start, ended without reporting, or was lost across a restart.
import type { JobKind } from '../../src/contract/index.ts';
import { Reconciler } from '../../src/controller/subprocess/reconciler.ts';
import type { Executor, RunnerExit } from '../../src/controller/subprocess/executor.ts';
import { newTestRun, quietLog, testDatabase, type TestDatabase } from '../support/in-process.ts';
import { eventually } from '../support/local-cluster.ts';
import { openDatabase } from '../../src/db/data-source.ts';
import { JobStore } from '../../src/db/job-store.ts';
import { tcpProxy } from '../support/tcp-proxy.ts';

/** FAKE executor: runners are entries in a map; tests end them at will. */
class FakeExecutor implements Executor {
  readonly name = 'fake';
  readonly running = new Map<string, Record<string, string>>();
  readonly alive = new Set<string>();
  failStart: string | undefined;
  #listeners: Array<(exit: RunnerExit) => void> = [];

  get active(): number {
    return this.running.size;
  }

  runningJobs(): Array<{ kind: JobKind; jobId: string }> {
    return [...this.running.keys()].map((jobId) => ({ kind: 'test_run' as const, jobId }));
  }

  readonly stopped: string[] = [];

  readonly starts: Array<{ jobId: string; shard: number }> = [];

  async start(_kind: JobKind, jobId: string, env: Record<string, string>, shard = 0): Promise<string> {
    if (this.failStart) throw new Error(this.failStart);
    this.starts.push({ jobId, shard });
    this.running.set(jobId, env);
    this.alive.add(`fake:${jobId}`);
    return `fake:${jobId}`;
  }

  async stop(jobId: string): Promise<void> {
    this.stopped.push(jobId);
    this.exit(jobId, 'stopped');
  }

  isAlive(ref: string): boolean {
    return this.alive.has(ref);
  }

  onExit(listener: (exit: RunnerExit) => void): void {
    this.#listeners.push(listener);
  }

  /** A runner ends: with its exit code, or killed (code null) as by default. */
  exit(jobId: string, reason: string, code: number | null = null, shard = 0): void {
    this.running.delete(jobId);
    this.alive.delete(`fake:${jobId}`);
    for (const l of this.#listeners) l({ kind: 'test_run', jobId, shard, code, signal: code === null ? 'SIGKILL' : null, othersAlive: 0, reason });
  }
}

let db: TestDatabase;
beforeAll(async () => {
  db = await testDatabase();
});
afterAll(async () => {
  await db?.stop();
});

const newRun = () => newTestRun(db.store);

function reconciler(executor: FakeExecutor, maxConcurrent = 2, stallSeconds = 900, lingerSeconds = 900) {
  return new Reconciler({
    store: db.store,
    executor,
    log: quietLog(),
    maxConcurrent,
    intervalMs: 60_000,
    stallSeconds,
    lingerSeconds,
    envFor: (_kind, job) => ({ JOB_ID: job.id }),
  });
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The job's runner reports it done: failed, with its reason. */
async function reportFailed(id: string): Promise<void> {
  const outcome = await db.store.applyDone('test_run', id, {
    status: 'failed',
    processed_images: 0,
    total_images: 4,
    failed_images: 0,
    results_path: null,
    timings: null,
    error_message: 'the model refused the input',
    error_code: 'RUNNER_ERROR',
  });
  expect(outcome.outcome).toBe('applied');
}

/**
 * `ended`'s runner reports its job done (failed, with its reason) and does not exit (hung,
 * frozen): stopped lingerSeconds (1 s) later, not at once, and `next` starts in its slot.
 */
async function lingersThenStops(r: Reconciler, executor: FakeExecutor, ended: string, next: string): Promise<void> {
  await reportFailed(ended);
  r.kick();
  await r.idle();
  // Not at once: a runner exits a moment after its report.
  expect([executor.stopped, executor.running.has(next)]).toEqual([[], false]);
  await sleep(1_100);
  r.kick();
  await r.idle();
  expect(executor.stopped).toEqual([ended]);
  await eventually('the next job starts in the freed slot', async () => (executor.running.has(next) ? true : undefined));
}

describe('subprocess reconciler', () => {
  it('records a runner exit seen while the database is away once it is back, with its real reason, and does not die of the outage', async () => {
    const direct = new URL(db.url);
    const proxy = await tcpProxy(Number(direct.port));
    direct.port = String(proxy.port);
    const ds = await openDatabase(direct.toString(), { migrate: false, poolSize: 2 });
    const executor = new FakeExecutor();
    const r = new Reconciler({
      store: new JobStore(ds),
      executor,
      log: quietLog(),
      maxConcurrent: 1,
      intervalMs: 200,
      stallSeconds: 900,
      lingerSeconds: 900,
      envFor: (_k, job) => ({ JOB_ID: job.id }),
    });
    const id = await newRun();
    try {
      await r.start();
      await eventually('the runner starts', async () => (executor.running.has(id) ? true : undefined));
      await proxy.cut();
      executor.exit(id, 'runner was killed by SIGKILL without reporting completion');
      await sleep(1_500); // passes fail meanwhile: logged, retried, nothing thrown
      expect((await db.store.get('test_run', id))!.status).toBe('pending');
      await proxy.restore();
      await eventually('the exit is recorded', async () => ((await db.store.get('test_run', id))!.status === 'failed' ? true : undefined));
      expect(await db.store.get('test_run', id)).toMatchObject({
        error_code: 'RUNNER_EXITED',
        error_message: 'runner was killed by SIGKILL without reporting completion',
      });
    } finally {
      await r.stop();
      await ds.destroy();
      await proxy.close();
    }
  });

  it('stops a runner that stops reporting and fails its job with why; a heartbeat keeps one alive', async () => {
    const executor = new FakeExecutor();
    const r = reconciler(executor, 2, 2);
    const [silent, beating] = [await newRun(), await newRun()];
    await r.start();
    await r.idle();
    expect(executor.running.size).toBe(2);
    for (let i = 0; i < 6; i++) {
      await sleep(500);
      await db.store.applyProgress('test_run', beating, { processed_images: 0, failed_images: 0 });
      r.kick();
      await r.idle();
    }
    expect(await db.store.get('test_run', silent)).toMatchObject({
      status: 'failed',
      error_code: 'RUNNER_STALLED',
      error_message: 'no progress for 2 s: the runner stopped reporting (no progress or heartbeat) and was stopped',
    });
    expect(executor.running.has(silent)).toBe(false);
    expect(await db.store.get('test_run', beating)).toMatchObject({ status: 'running' });
    expect(executor.running.has(beating)).toBe(true);
    await r.stop();
    await db.store.cancel('test_run', beating);
    executor.exit(beating, 'cancelled');
  });

  it('starts the oldest pending jobs up to its limit, and the next when one ends', async () => {
    const executor = new FakeExecutor();
    const r = reconciler(executor);
    const ids = [await newRun(), await newRun(), await newRun()];
    await r.start();
    await r.idle();
    expect([...executor.running.keys()]).toEqual(ids.slice(0, 2));
    expect(await db.store.get('test_run', ids[0]!)).toMatchObject({ executor: 'fake', executor_ref: `fake:${ids[0]}`, status: 'pending' });
    executor.exit(ids[0]!, 'runner exited with code 1 without reporting completion', 1);
    await eventually('the third starts', async () => (executor.running.has(ids[2]!) ? true : undefined));
    expect(await db.store.get('test_run', ids[0]!)).toMatchObject({
      status: 'failed',
      error_code: 'RUNNER_EXITED',
      error_message: 'runner exited with code 1 without reporting completion',
    });
    await r.stop();
    for (const id of [...executor.running.keys()]) await db.store.cancel('test_run', id);
  });

  it('once stopped, starts nothing: neither a runner exit nor a kick claims a pending job', async () => {
    const executor = new FakeExecutor();
    const r = reconciler(executor, 1);
    const first = await newRun();
    await r.start();
    await r.idle();
    expect([...executor.running.keys()]).toEqual([first]);
    await r.stop();
    // A job created while the controller shuts down (its REST door still open), then the runner's
    // exit, which frees the one slot, and a create's kick: a pass would start `waiting` now.
    const waiting = await newRun();
    executor.exit(first, 'runner was killed by SIGKILL without reporting completion');
    r.kick();
    await r.idle();
    expect(executor.starts.map((s) => s.jobId)).toEqual([first]);
    expect(await db.store.get('test_run', waiting)).toMatchObject({ status: 'pending', executor: null });
    // Both are the next controller's: it fails the runner it does not find and starts the job.
    const nextExecutor = new FakeExecutor();
    const next = reconciler(nextExecutor, 1);
    await next.start();
    await next.idle();
    expect(await db.store.get('test_run', first)).toMatchObject({ status: 'failed', error_code: 'RUNNER_LOST' });
    expect(nextExecutor.starts.map((s) => s.jobId)).toEqual([waiting]);
    await next.stop();
    await db.store.cancel('test_run', waiting);
  });

  it('stops a runner still alive lingerSeconds after its job ended, and starts the next job in its slot', async () => {
    const executor = new FakeExecutor();
    const r = reconciler(executor, 1, 900, 1);
    const [ended, next] = [await newRun(), await newRun()];
    await r.start();
    await r.idle();
    expect([...executor.running.keys()]).toEqual([ended]);
    await lingersThenStops(r, executor, ended, next);
    // The job keeps the outcome its runner reported.
    expect(await db.store.get('test_run', ended)).toMatchObject({ status: 'failed', error_code: 'RUNNER_ERROR', error_message: 'the model refused the input' });
    await r.stop();
    await db.store.cancel('test_run', next);
  });

  it('starts a crashed runner again while the backoff limit allows, then fails the job with BACKOFF_LIMIT_EXCEEDED; a reported failure is not retried', async () => {
    const executor = new FakeExecutor();
    const r = reconciler(executor);
    const id = await newTestRun(db.store, { backoff_limit: 2 });
    await r.start();
    await r.idle();
    for (const restart of [1, 2]) {
      executor.exit(id, 'runner was killed by SIGKILL without reporting completion');
      await eventually(`restart ${restart}`, async () => (executor.starts.filter((s) => s.jobId === id).length === restart + 1 ? true : undefined));
    }
    expect((await db.store.get('test_run', id))!.status).toBe('pending');
    executor.exit(id, 'runner was killed by SIGKILL without reporting completion');
    const failed = await eventually('failed', async () => {
      const row = await db.store.get('test_run', id);
      return row?.status === 'failed' ? row : undefined;
    });
    expect(failed).toMatchObject({ error_code: 'BACKOFF_LIMIT_EXCEEDED' });
    expect(failed.error_message).toMatch(/killed by SIGKILL.*crashed 3 times \(backoff_limit 2\)/);
    expect(executor.starts.filter((s) => s.jobId === id)).toHaveLength(3);

    // A runner that reported its failure (exit 1) is not started again, whatever the limit.
    const reported = await newTestRun(db.store, { backoff_limit: 5 });
    r.kick();
    await eventually('started', async () => (executor.running.has(reported) ? true : undefined));
    executor.exit(reported, 'runner exited with code 1 without reporting completion', 1);
    await eventually('failed', async () => ((await db.store.get('test_run', reported))?.status === 'failed' ? true : undefined));
    expect(executor.starts.filter((s) => s.jobId === reported)).toHaveLength(1);
    await r.stop();
  });

  it('starts one runner per shard of a sharded job', async () => {
    const executor = new FakeExecutor();
    const r = reconciler(executor);
    const id = await newTestRun(db.store, { parallelism: 3 });
    await r.start();
    await r.idle();
    expect(executor.starts.filter((s) => s.jobId === id).map((s) => s.shard)).toEqual([0, 1, 2]);
    await r.stop();
    await db.store.cancel('test_run', id);
  });

  it('fails a job whose runner cannot start, with RUNNER_NOT_STARTED', async () => {
    const executor = new FakeExecutor();
    executor.failStart = 'spawn ENOENT';
    const id = await newRun();
    const r = reconciler(executor);
    await r.start();
    await r.idle();
    expect(await db.store.get('test_run', id)).toMatchObject({
      status: 'failed',
      error_code: 'RUNNER_NOT_STARTED',
      error_message: 'runner could not start: spawn ENOENT',
    });
    await r.stop();
  });

  it('after a restart, adopts a live runner and fails a lost one (RUNNER_LOST)', async () => {
    const first = new FakeExecutor();
    const r1 = reconciler(first);
    const live = await newRun();
    const lost = await newRun();
    await r1.start();
    await r1.idle();
    await r1.stop();
    // A new controller: the same runners, one of which died while nobody watched.
    const second = new FakeExecutor();
    second.alive.add(`fake:${live}`);
    const r2 = reconciler(second);
    await r2.start();
    await r2.idle();
    expect(await db.store.get('test_run', lost)).toMatchObject({ status: 'failed', error_code: 'RUNNER_LOST' });
    expect(await db.store.get('test_run', live)).toMatchObject({ status: 'pending', executor_ref: `fake:${live}` });
    await r2.stop();
    await db.store.cancel('test_run', live);
  });

  it('stops a runner adopted from a previous controller still alive lingerSeconds after its job ended, and starts the next job in its slot', async () => {
    const first = new FakeExecutor();
    const r1 = reconciler(first, 1);
    const ended = await newRun();
    await r1.start();
    await r1.idle();
    await r1.stop();
    const next = await newRun();
    // A new controller adopts the runner, which holds the only slot.
    const second = new FakeExecutor();
    second.alive.add(`fake:${ended}`);
    const r2 = reconciler(second, 1, 900, 1);
    await r2.start();
    await r2.idle();
    expect(second.running.has(next)).toBe(false);
    await lingersThenStops(r2, second, ended, next);
    expect(await db.store.get('test_run', ended)).toMatchObject({ status: 'failed', error_code: 'RUNNER_ERROR' });
    await r2.stop();
    await db.store.cancel('test_run', next);
  });

  it('fails an adopted runner that ended as ended (RUNNER_EXITED), even when its silence is past the stall timeout', async () => {
    const first = new FakeExecutor();
    const r1 = reconciler(first, 2, 1);
    const id = await newRun();
    await r1.start();
    await r1.idle();
    await r1.stop();
    const second = new FakeExecutor();
    second.alive.add(`fake:${id}`);
    const r2 = reconciler(second, 2, 1);
    await r2.start();
    await r2.idle();
    // It ends while nobody hears from it, and the next pass comes after the stall timeout.
    second.alive.delete(`fake:${id}`);
    await sleep(1_500);
    r2.kick();
    await r2.idle();
    expect(await db.store.get('test_run', id)).toMatchObject({
      status: 'failed',
      error_code: 'RUNNER_EXITED',
      error_message: 'runner process ended without reporting completion (it was started by a previous controller)',
    });
    await r2.stop();
  });
});
