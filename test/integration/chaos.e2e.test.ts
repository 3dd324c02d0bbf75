// Faults on the real stack (kinfer serve's supervisor, the subprocess tier, real Postgres and S3),
// each case asserting the job's final state, its result rows (exactly the dataset's images, no
// duplicates) and that the services recovered without a manual step: a runner stopped with
// SIGSTOP, the callback service frozen for 30 s and then killed, the controller killed, and
// Postgres cut off for 30 s behind a TCP relay. A long input list travels through the callback
// service, not the environment.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildColorClassifier } from '../../src/samples/color-classifier.ts';
import { buildColorDataset } from '../../src/samples/color-dataset.ts';
import { eventually } from '../support/local-cluster.ts';
import { tcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';
import { startTestStack, upload, type TestStack } from '../support/test-stack.ts';

const IMAGES = 600;
let stack: TestStack;
let proxy: TcpProxy;
let checkpoint: string;
let dataset: string;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

beforeAll(async () => {
  stack = await startTestStack(
    // A stall timeout far above the heartbeat, yet short for a test. 10 s was too short once: in
    // CI, beside the image build, a run was stopped as stalled 11 s after it was created, with
    // nothing reported (passing CI runs show 1.7-5.2 s from a runner's start to its first report).
    { KINFER_RUNNER_BATCH_SIZE: '4', KINFER_RUNNER_STALL_SECONDS: '20', KINFER_RUNNER_HEARTBEAT_SECONDS: '1' },
    {
      // Every service reaches Postgres through the relay, so that the test can cut it off.
      relayDatabase: async (url) => {
        const relayed = new URL(url);
        proxy = await tcpProxy(Number(relayed.port));
        relayed.port = String(proxy.port);
        return relayed.toString();
      },
    },
  );
  checkpoint = `${stack.s3Prefix}/models/colors.onnx`;
  await stack.store.write(checkpoint, Buffer.from(buildColorClassifier().model));
  dataset = `${stack.s3Prefix}/datasets/big`;
  await upload(stack.store, dataset, await buildColorDataset({ perClass: IMAGES / 6, seed: 5 }));
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  await proxy?.close();
});

/** A running test run of IMAGES images, and its runner's pid. */
async function startRun(): Promise<{ id: string; pid: number }> {
  const created = await stack.api('POST', '/test-runs', { checkpoint_path: checkpoint, dataset_path: dataset, task_type: 'image_classification' });
  expect(created.status).toBe(201);
  await stack.waitFor('test-runs', created.body.id, (j) => j.status === 'running' && j.processed_images > 0);
  const { rows } = await stack.db.query('SELECT executor_ref FROM test_runs WHERE id = $1', [created.body.id]);
  return { id: created.body.id as string, pid: Number(/^pid:(\d+)/.exec(rows[0].executor_ref)![1]) };
}

/** Result rows: how many, and how many distinct image indexes (a duplicate would differ). */
async function rowsOf(id: string): Promise<{ rows: number; distinct: number }> {
  const { rows } = await stack.db.query(
    'SELECT count(*)::int AS rows, count(DISTINCT image_index)::int AS distinct FROM test_image_results WHERE test_run_id = $1',
    [id],
  );
  return rows[0];
}

async function expectCompletedWhole(id: string): Promise<void> {
  const run = await stack.waitFor('test-runs', id, undefined, 180_000);
  expect(run).toMatchObject({ status: 'completed', processed_images: IMAGES, total_images: IMAGES, failed_images: 0 });
  expect(await rowsOf(id)).toEqual({ rows: IMAGES, distinct: IMAGES });
}

describe('chaos on the subprocess tier', () => {
  it('fails a runner stopped with SIGSTOP after the stall timeout, with why, and stops it', async () => {
    const { id, pid } = await startRun();
    process.kill(pid, 'SIGSTOP');
    const run = await stack.waitFor('test-runs', id, undefined, 60_000);
    expect(run).toMatchObject({ status: 'failed', error_code: 'RUNNER_STALLED' });
    expect(run.error_message).toBe('no progress for 20 s: the runner stopped reporting (no progress or heartbeat) and was stopped');
    for (let i = 0; i < 100 && alive(pid); i++) await sleep(100);
    expect(alive(pid)).toBe(false);
    const { rows, distinct } = await rowsOf(id);
    expect(rows).toBe(distinct);
    expect(rows).toBeLessThan(IMAGES);
  });

  it('rides out the callback service frozen for 30 s and then killed: restarted by the supervisor, nothing lost', async () => {
    const { id } = await startRun();
    const before = stack.pidOf('callback')!;
    process.kill(before, 'SIGSTOP');
    await sleep(30_000);
    process.kill(before, 'SIGKILL');
    await expectCompletedWhole(id);
    expect(stack.pidOf('callback')).not.toBe(before);
  }, 240_000);

  it('keeps the job when the controller is killed: the supervisor restarts it on the same port', async () => {
    const { id } = await startRun();
    const before = stack.pidOf('controller')!;
    process.kill(before, 'SIGKILL');
    await expectCompletedWhole(id);
    // The job does not need the controller to finish (runner -> callback service -> Postgres), so
    // it can end before the supervisor's new controller is up: wait for that, then it answers.
    await eventually('a new controller', async () => (stack.pidOf('controller') !== before ? true : undefined));
    expect((await stack.api('GET', `/test-runs/${id}`)).body).toMatchObject({ status: 'completed' });
  }, 240_000);

  it('rides out Postgres cut off for 30 s: 503 with Retry-After meanwhile, then the job completes whole', async () => {
    const { id } = await startRun();
    await proxy.cut();
    await sleep(2_000);
    const during = await fetch(`${stack.apiUrl}/test-runs/${id}`, { headers: stack.bearer });
    expect([during.status, during.headers.get('retry-after'), ((await during.json()) as { error: string }).error]).toEqual([503, '5', 'database_unavailable']);
    const ready = await fetch(`${new URL(stack.apiUrl).origin}/readyz`);
    expect([ready.status, await ready.json()]).toEqual([503, { status: 'not_ready', message: 'the database is unreachable' }]);
    await sleep(28_000);
    const pids = [stack.pidOf('controller'), stack.pidOf('callback')];
    await proxy.restore();
    await expectCompletedWhole(id);
    // Nobody died of the outage: the same processes answer.
    expect([stack.pidOf('controller'), stack.pidOf('callback')]).toEqual(pids);
  }, 240_000);

  it('runs a batch job of 3,000 paths: the list is read through the callback service, not the environment', async () => {
    const listing: string[] = [];
    for await (const uri of stack.store.list(`${dataset}/test`)) listing.push(uri);
    const paths = Array.from({ length: 3000 }, (_, i) => listing[i % listing.length]!);
    const created = await stack.api('POST', '/inference-jobs', {
      checkpoint_path: checkpoint,
      task_type: 'image_classification',
      inference_type: 'batch',
      input_config: { image_paths: paths },
    });
    expect(created.status).toBe(201);
    const job = await stack.waitFor('inference-jobs', created.body.id, undefined, 180_000);
    expect(job).toMatchObject({ status: 'completed', processed_images: 3000, failed_images: 0 });
    const count = await stack.db.query('SELECT count(*)::int AS n FROM inference_results WHERE inference_job_id = $1', [created.body.id]);
    expect(count.rows[0].n).toBe(3000);
  }, 240_000);

  it("left no token, password or key in any log: the services' and the runners'", () => {
    const logs = join(stack.home, 'logs');
    const password = decodeURIComponent(new URL(process.env.DATABASE_URL!).password);
    const secrets = [password, stack.privateKey.split('\n')[1]!, 's3rver-secret', process.env.AWS_SECRET_ACCESS_KEY!].filter((s) => s && s.length >= 8);
    let files = 0;
    for (const name of readdirSync(logs)) {
      const text = readFileSync(join(logs, name), 'utf8');
      files++;
      for (const secret of secrets) expect([name, text.includes(secret)]).toEqual([name, false]);
      // A callback token is an ES256 JWT: eyJ... three base64url parts.
      expect([name, /eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+/.test(text)]).toEqual([name, false]);
    }
    expect(files).toBeGreaterThan(4);
  });
});
