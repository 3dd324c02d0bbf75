// bench:soak — many jobs under random faults: does anything get lost, counted twice, or stuck?
//
//   npm run bench:soak [-- --minutes 10 --jobs 200 --baseline-share 0.2]
//
// Embedded defaults as `kinfer serve` runs them (its supervisor, the subprocess tier), with the
// services reaching a real Postgres through a TCP relay so that the database can be cut off.
// Test runs of a 24-image colour dataset are submitted at an even pace. The first part of the
// time (--baseline-share) runs without faults: the baseline. Then a random fault every few
// seconds: the controller or callback service killed (-9), the callback service frozen
// (SIGSTOP 15 s), Postgres cut off 20 s, a runner killed (-9) or frozen (its job must fail with
// why: RUNNER_EXITED, RUNNER_STALLED). At the end every job must be terminal, and its rows are
// checked: a completed job has exactly one row per image; none has duplicates or fewer rows than
// the images it reported processed.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { startStack } from '../src/cli/stack.ts';
import { startEmbeddedPostgres } from '../src/local/embedded-postgres.ts';
import { buildColorClassifier } from '../src/samples/color-classifier.ts';
import { buildColorDataset } from '../src/samples/color-dataset.ts';
import { freePort } from '../test/support/ports.ts';
import { tcpProxy } from '../test/support/tcp-proxy.ts';

const { values: args } = parseArgs({
  options: { minutes: { type: 'string', default: '10' }, jobs: { type: 'string', default: '200' }, 'baseline-share': { type: 'string', default: '0.2' } },
});
const DURATION_MS = Number(args.minutes) * 60_000;
const JOBS = Number(args.jobs);
const BASELINE_MS = DURATION_MS * Number(args['baseline-share']);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pick = <T>(xs: readonly T[]) => xs[Math.floor(Math.random() * xs.length)]!;

const dir = mkdtempSync(join(tmpdir(), 'kinfer-bench-soak-'));
chmodSync(dir, 0o755);
const stops: Array<() => Promise<void>> = [];
try {
  const database = await startEmbeddedPostgres({ dataDir: join(dir, 'postgres'), port: await freePort(), persistent: false });
  stops.unshift(database.stop);
  const proxy = await tcpProxy(Number(new URL(database.url).port));
  stops.unshift(proxy.close);
  const relayed = new URL(database.url);
  relayed.port = String(proxy.port);
  const events: string[] = [];
  const stack = await startStack({
    home: join(dir, 'kinfer'),
    apiPort: 0,
    callbackPort: 0,
    pgPort: 0,
    serviceLogs: 'files',
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DATABASE_URL: relayed.toString(),
      KINFER_RUNNER_STALL_SECONDS: '20',
      KINFER_RUNNER_HEARTBEAT_SECONDS: '2',
    },
    onEvent: (line) => events.push(line),
  });
  stops.unshift(stack.stop);
  // Under KINFER_HOME: the embedded default allows jobs to read there.
  const data = join(dir, 'kinfer', 'data');
  await writeFile(join(await mkdirp(join(data, 'models')), 'colors.onnx'), buildColorClassifier().model);
  for (const f of await buildColorDataset({ perClass: 4, seed: 11 })) {
    await mkdirp(dirname(join(data, 'colors', f.path)));
    await writeFile(join(data, 'colors', f.path), f.bytes);
  }
  const request = { checkpoint_path: join(data, 'models', 'colors.onnx'), dataset_path: join(data, 'colors'), task_type: 'image_classification' };
  const db = new pg.Client({ connectionString: database.adminUrl });
  await db.connect();
  stops.unshift(() => db.end());

  const faults = new Map<string, number>();
  const count = (name: string) => faults.set(name, (faults.get(name) ?? 0) + 1);
  const runnerPids = async () =>
    (await db.query(`SELECT executor_ref FROM test_runs WHERE status = 'running' AND executor_ref IS NOT NULL`)).rows.map((r) =>
      Number(/^pid:(\d+)/.exec(r.executor_ref)![1]),
    );
  /** Whether the signal reached a process. */
  const signal = (pid: number | undefined, sig: NodeJS.Signals): boolean => {
    try {
      if (!pid) return false;
      process.kill(pid, sig);
      return true;
    } catch {
      return false; // gone already
    }
  };
  /** Each returns false when there was nothing to hit (no runner running). */
  const FAULTS: Record<string, () => Promise<boolean | void>> = {
    'controller killed (-9)': async () => signal(stack.pidOf('controller'), 'SIGKILL'),
    'callback service killed (-9)': async () => signal(stack.pidOf('callback'), 'SIGKILL'),
    'callback service frozen 15 s': async () => {
      const pid = stack.pidOf('callback');
      signal(pid, 'SIGSTOP');
      await sleep(15_000);
      signal(pid, 'SIGCONT');
    },
    'Postgres cut off 20 s': async () => {
      await proxy.cut();
      await sleep(20_000);
      await proxy.restore();
    },
    'runner killed (-9)': async () => signal(pick([...(await runnerPids()), 0]), 'SIGKILL'),
    'runner frozen (SIGSTOP)': async () => signal(pick([...(await runnerPids()), 0]), 'SIGSTOP'),
  };

  const started = Date.now();
  let submitted = 0;
  let submitRetries = 0;
  const submitter = (async () => {
    for (let i = 0; i < JOBS; i++) {
      const due = started + (i * DURATION_MS) / JOBS;
      if (due > Date.now()) await sleep(due - Date.now());
      for (;;) {
        const res = await fetch(`${stack.apiUrl}/test-runs`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${stack.adminToken}` },
          body: JSON.stringify(request),
        }).catch(() => undefined);
        if (res?.status === 201) break;
        // A refusal is a bug of this benchmark, not a fault to ride out: stop and say why.
        if (res && res.status >= 400 && res.status < 500 && res.status !== 429) throw new Error(`submit refused: HTTP ${res.status} ${await res.text()}`);
        submitRetries++;
        await sleep(1000);
      }
      submitted++;
    }
  })();
  const injector = (async () => {
    await sleep(BASELINE_MS);
    while (Date.now() - started < DURATION_MS) {
      const name = pick(Object.keys(FAULTS));
      count((await FAULTS[name]!()) === false ? `${name}: nothing to hit` : name);
      await sleep(5_000 + Math.random() * 10_000);
    }
  })();
  await Promise.all([submitter, injector]);
  // Let every job end: nothing may stay active.
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    const active = (await db.query(`SELECT count(*)::int AS n FROM test_runs WHERE status IN ('pending', 'running')`)).rows[0].n;
    if (active === 0 || Date.now() > deadline) break;
    await sleep(1000);
  }
  const jobs = (
    await db.query(`SELECT r.id, r.status, r.error_code, r.processed_images, r.total_images, r.created_at, r.completed_at,
      (SELECT count(*)::int FROM test_image_results i WHERE i.test_run_id = r.id) AS rows,
      (SELECT count(DISTINCT image_index)::int FROM test_image_results i WHERE i.test_run_id = r.id) AS distinct_rows
      FROM test_runs r`)
  ).rows;
  const outcomes = new Map<string, number>();
  let lost = 0;
  let duplicated = 0;
  for (const j of jobs) {
    const key = j.status === 'completed' ? 'completed' : `${j.status} ${j.error_code ?? ''}`.trim();
    outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
    duplicated += j.rows - j.distinct_rows;
    lost += Math.max(0, (j.status === 'completed' ? j.total_images : j.processed_images) - j.rows);
  }
  const rate = (from: number, to: number) => {
    const done = jobs.filter((j) => j.status === 'completed' && j.completed_at.getTime() >= from && j.completed_at.getTime() < to).length;
    return (done / Math.max(1, to - from)) * 60_000;
  };
  const baseline = rate(started, started + BASELINE_MS);
  const underFaults = rate(started + BASELINE_MS, Date.now());
  const rows: Array<[string, string]> = [
    ['jobs submitted (retried submits)', `${submitted} (${submitRetries})`],
    ['jobs in the database', String(jobs.length)],
    ...[...faults].map(([k, v]) => [`fault: ${k}`, String(v)] as [string, string]),
    ...[...outcomes].sort().map(([k, v]) => [`jobs ${k}`, String(v)] as [string, string]),
    ['jobs still active', String(jobs.filter((j) => j.status === 'pending' || j.status === 'running').length)],
    ['rows lost', String(lost)],
    ['rows duplicated', String(duplicated)],
    ['completed jobs/min, baseline (no faults)', baseline.toFixed(1)],
    ['completed jobs/min under faults', underFaults.toFixed(1)],
    ['ratio under faults / baseline', (underFaults / Math.max(baseline, 1e-9)).toFixed(2)],
    ['supervisor restarts', String(events.filter((e) => / is back$/.test(e)).length)],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  console.log(`\nbench:soak: ${args.minutes} min, ${JOBS} test runs of 24 images\n`);
  for (const [k, v] of rows) console.log(`${k.padEnd(width)}  ${v}`);
  process.exitCode = lost === 0 && duplicated === 0 && jobs.length >= submitted && rows.find(([k]) => k === 'jobs still active')![1] === '0' ? 0 : 1;
} finally {
  for (const stop of stops) await stop().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
}

async function mkdirp(path: string): Promise<string> {
  await mkdir(path, { recursive: true });
  return path;
}
