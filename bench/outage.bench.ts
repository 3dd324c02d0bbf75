// bench:outage — one test run through a long outage of the callback service (default 5 minutes,
// longer than a rolling restart), against the same run without it, in the same stack.
//
//   npm run bench:outage [-- --seconds 300 --images 600]
//
// The callback service is frozen (SIGSTOP: connections hang, as a partition) for --seconds once
// the run has started, then killed (-9): the supervisor starts it again and the runner, which has
// been retrying with backoff, goes on. The table: each run's status, images and stored rows
// (distinct), and wall time; the outage run must complete with every row, once.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { startStack } from '../src/cli/stack.ts';
import { buildColorClassifier } from '../src/samples/color-classifier.ts';
import { buildColorDataset } from '../src/samples/color-dataset.ts';
import { freePort } from '../test/support/ports.ts';

const { values: args } = parseArgs({ options: { seconds: { type: 'string', default: '300' }, images: { type: 'string', default: '600' } } });
const OUTAGE_MS = Number(args.seconds) * 1000;
const IMAGES = Number(args.images);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const dir = mkdtempSync(join(tmpdir(), 'kinfer-bench-outage-'));
chmodSync(dir, 0o755);
const home = join(dir, 'kinfer');
const stack = await startStack({
  home,
  apiPort: 0,
  callbackPort: 0,
  pgPort: await freePort(),
  serviceLogs: 'files',
  env: { PATH: process.env.PATH, HOME: process.env.HOME },
  onEvent: () => undefined,
});
try {
  const data = join(home, 'data');
  await mkdir(join(data, 'models'), { recursive: true });
  await writeFile(join(data, 'models', 'colors.onnx'), buildColorClassifier().model);
  for (const f of await buildColorDataset({ perClass: Math.ceil(IMAGES / 6), seed: 3 })) {
    await mkdir(dirname(join(data, 'colors', f.path)), { recursive: true });
    await writeFile(join(data, 'colors', f.path), f.bytes);
  }
  const headers = { authorization: `Bearer ${stack.adminToken}`, 'content-type': 'application/json' };
  const api = async (method: string, path: string, body?: unknown) =>
    (await fetch(`${stack.apiUrl}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })).json() as Promise<
      Record<string, any>
    >;
  const db = new pg.Client({ connectionString: stack.controllerEnv.DATABASE_URL });
  await db.connect();
  const run = async (outage: boolean) => {
    const started = Date.now();
    const { id } = await api('POST', '/test-runs', {
      checkpoint_path: join(data, 'models', 'colors.onnx'),
      dataset_path: join(data, 'colors'),
      task_type: 'image_classification',
    });
    if (outage) {
      for (;;) {
        const job = await api('GET', `/test-runs/${id}`);
        if (job.status === 'running' && job.processed_images > 0) break;
        await sleep(50);
      }
      const pid = stack.pidOf('callback')!;
      process.kill(pid, 'SIGSTOP');
      await sleep(OUTAGE_MS);
      process.kill(pid, 'SIGKILL');
    }
    let job;
    for (;;) {
      job = await api('GET', `/test-runs/${id}`).catch(() => ({}) as Record<string, any>);
      if (['completed', 'failed', 'cancelled'].includes(job.status)) break;
      await sleep(200);
    }
    const rows = (await db.query('SELECT count(*)::int AS n, count(DISTINCT image_index)::int AS d FROM test_image_results WHERE test_run_id = $1', [id]))
      .rows[0];
    return {
      status: job.status as string,
      processed: job.processed_images as number,
      rows: rows.n as number,
      distinct: rows.d as number,
      seconds: (Date.now() - started) / 1000,
    };
  };
  const baseline = await run(false);
  const outage = await run(true);
  await db.end();
  console.log(`\nbench:outage: callback service frozen ${args.seconds} s then killed, during a ${IMAGES}-image test run\n`);
  console.log('run                 status      processed  rows  distinct  seconds');
  for (const [name, r] of [
    ['baseline (no fault)', baseline],
    ['through the outage', outage],
  ] as const) {
    console.log(
      `${name.padEnd(20)}${r.status.padEnd(12)}${String(r.processed).padEnd(11)}${String(r.rows).padEnd(6)}${String(r.distinct).padEnd(10)}${r.seconds.toFixed(1)}`,
    );
  }
  console.log(`\nratio of wall time (outage / baseline): ${(outage.seconds / baseline.seconds).toFixed(1)}; the outage itself: ${args.seconds} s`);
  process.exitCode = outage.status === 'completed' && outage.rows === outage.processed && outage.rows === outage.distinct ? 0 : 1;
} finally {
  await stack.stop();
  rmSync(dir, { recursive: true, force: true });
}
