// The predictor as the process the image and `kinfer serve` run (src/predictor/main.ts), on the
// real Postgres, S3 server and Redis: two replicas share one Redis cache; SIGHUP reloads a changed
// model file; a reload announced while a replica could not hear is made when it hears again;
// SIGTERM under load answers every request already taken, then exits 0.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildColorClassifier, COLOR_CLASSES } from '../../src/samples/color-classifier.ts';
import { buildColorDataset, type DatasetFile } from '../../src/samples/color-dataset.ts';
import { testAccess, testDatabase, testPrefix, testStorage, type TestDatabase } from '../support/in-process.ts';
import { startRedis, type TestRedis } from '../support/redis-server.ts';
import { TOKEN_CHANGES_CHANNEL, type TokenStore } from '../../src/db/token-store.ts';
import { MODEL_RELOADS_CHANNEL } from '../../src/db/model-store.ts';
import { tcpProxy } from '../support/tcp-proxy.ts';
import { ownHomeAndTmp } from '../support/processes.ts';

let db: TestDatabase;
let redis: TestRedis;
let prefix: string;
let bearer: Record<string, string>;
let tokens: TokenStore;
let files: DatasetFile[];
let registerModel: (name: string, checkpoint: string) => Promise<unknown>;
const children: ChildProcess[] = [];

const MAIN = fileURLToPath(new URL('../../src/predictor/main.ts', import.meta.url));

/** A predictor process; resolves when it answers /readyz. */
async function startPredictor(
  databaseUrl = db.url,
  env: Record<string, string> = {},
): Promise<{ url: string; child: ChildProcess; exited: Promise<number | null>; log: () => string; left: () => { home: string[]; tmp: string[] } }> {
  const dir = mkdtempSync(join(process.env.KINFER_TEST_DIR!, 'predictor-proc-'));
  const folders = ownHomeAndTmp(dir);
  const logFile = join(dir, 'predictor.log');
  const { createWriteStream } = await import('node:fs');
  const out = createWriteStream(logFile);
  const child = spawn(process.execPath, [MAIN], {
    env: {
      PATH: process.env.PATH,
      ...folders.env,
      DATABASE_URL: databaseUrl,
      KINFER_PREDICTOR_PORT: '0',
      KINFER_PORT_FILE: join(dir, 'port'),
      KINFER_ALLOWED_URIS: `s3://${process.env.KINFER_TEST_BUCKET}`,
      S3_ENDPOINT: process.env.S3_ENDPOINT,
      AWS_REGION: process.env.AWS_REGION,
      AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID,
      AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY,
      REDIS_URL: redis.url,
      KINFER_PREDICTOR_INTRA_OP_THREADS: '1',
      KINFER_PREDICT_REGISTRY_TTL_MS: '0',
      // Far longer than any test: only the revocation's notification can end a cached token.
      KINFER_PREDICTOR_TOKEN_CACHE_SECONDS: '600',
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.pipe(out);
  child.stderr!.pipe(out);
  children.push(child);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`predictor exited: ${readFileSync(logFile, 'utf8')}`);
    try {
      const port = readFileSync(join(dir, 'port'), 'utf8').trim();
      const url = `http://127.0.0.1:${port}`;
      if ((await fetch(`${url}/readyz`)).ok) return { url, child, exited, log: () => readFileSync(logFile, 'utf8'), left: folders.left };
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`predictor did not start: ${readFileSync(logFile, 'utf8')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const predict = async (url: string, body: unknown, as = bearer) => {
  const res = await fetch(`${url}/api/v1/predict`, { method: 'POST', headers: { ...as, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
};
/** Resolves once the `slow` model holds `n` requests (waiting for their batch). */
async function untilInFlight(url: string, n: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const info = (await (await fetch(`${url}/api/v1/models/slow/info`, { headers: bearer })).json()) as { versions: Array<{ in_flight: number }> };
    if (info.versions[0]!.in_flight === n) return;
    if (Date.now() > deadline) throw new Error(`the predictor took ${info.versions[0]!.in_flight} of ${n} requests`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
const imageUrl = (color: string) => `${prefix}/data/${files.find((f) => f.path.startsWith(`test/${color}/`))!.path}`;

beforeAll(async () => {
  db = await testDatabase();
  redis = await startRedis();
  prefix = testPrefix();
  const access = await testAccess(db.ds);
  bearer = access.bearer;
  tokens = access.tokens;
  files = await buildColorDataset({ perClass: 2 });
  const s3 = testStorage();
  await s3.write(`${prefix}/models/colors.onnx`, buildColorClassifier().model);
  await s3.write(`${prefix}/models/slow.onnx`, buildColorClassifier().model);
  for (const f of files) await s3.write(`${prefix}/data/${f.path}`, f.bytes);
  const entry = {
    task_type: 'image_classification',
    checkpoint_path: `${prefix}/models/colors.onnx`,
    metadata: {},
    tags: {},
    metrics: {},
    created_by: 'admin',
  };
  await access.models.register({ ...entry, name: 'colors', version: '1', stage: 'production' });
  registerModel = (name, checkpoint) => access.models.register({ ...entry, checkpoint_path: checkpoint, name, version: '1', stage: 'production' });
  // Requests wait up to 5 s to be batched: SIGTERM lands while they are queued. (With 1 s, a CI
  // run under load took the 40 requests of the SIGTERM test over more than a second: the first
  // were answered before the last came, and the test never saw 40 in flight.)
  await access.models.register({
    ...entry,
    checkpoint_path: `${prefix}/models/slow.onnx`,
    name: 'slow',
    version: '1',
    stage: 'production',
    serving: { max_batch_size: 64, max_queue_delay_ms: 5000 },
  });
}, 60_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await redis?.stop();
  await db?.stop();
});

describe('the predictor process', () => {
  it('two replicas share the Redis cache; SIGHUP reloads a changed model file, a reload asked of one reaches the other', async () => {
    const [a, b] = await Promise.all([startPredictor(), startPredictor()]);
    const red = { model: 'colors', image_url: imageUrl('red') };
    const first = await predict(a.url, red);
    const second = await predict(b.url, red);
    expect([first.status, first.body.cached, second.body.cached, second.body.predicted_label]).toEqual([200, false, true, 'red']);
    // B's model warm too (a cached answer did not need it).
    expect((await predict(b.url, { model: 'colors', image_url: imageUrl('green') })).body).toMatchObject({ cached: false, predicted_label: 'green' });

    await testStorage().write(
      `${prefix}/models/colors.onnx`,
      buildColorClassifier({ classes: COLOR_CLASSES.map((c) => ({ ...c, name: `${c.name}-v2` })) }).model,
    );
    a.child.kill('SIGHUP');
    const deadline = Date.now() + 30_000;
    while (!/reloaded on SIGHUP/.test(a.log())) {
      if (Date.now() > deadline) throw new Error(`no reload: ${a.log()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const fromA = await predict(a.url, red);
    expect([fromA.body.cached, fromA.body.predicted_label]).toEqual([false, 'red-v2']);
    // SIGHUP is this process's; B's warm session still answers from the old file (a fresh key: no cache).
    expect((await predict(b.url, { ...red, conf: 0.5 })).body.predicted_label).toBe('red');

    // A reload asked of A reaches B (Postgres NOTIFY): B loads the new file too.
    const reloaded = await fetch(`${a.url}/api/v1/models/colors/reload`, { method: 'POST', headers: bearer });
    expect(reloaded.status).toBe(200);
    while (!/reloaded on notice/.test(b.log())) {
      if (Date.now() > deadline + 30_000) throw new Error(`B did not reload: ${b.log()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(/reloaded on notice/.test(a.log())).toBe(false);
    const fromB = await predict(b.url, { ...red, conf: 0.25 });
    expect([fromB.body.cached, fromB.body.predicted_label]).toEqual([false, 'red-v2']);

    // Revocations and reloads are heard on one LISTEN connection a replica, not one a channel.
    const listeners: Array<{ application_name: string }> = await db.ds.query(
      `SELECT application_name FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'kinfer listen%'`,
    );
    expect(listeners.map((l) => l.application_name)).toEqual(Array(2).fill(`kinfer listen ${TOKEN_CHANGES_CHANNEL},${MODEL_RELOADS_CHANNEL}`));
  });

  it('a reload announced while its LISTEN connection was down is not lost: every warm model is loaded again once it listens again', async () => {
    const s3 = testStorage();
    const checkpoint = `${prefix}/models/unheard.onnx`;
    await s3.write(checkpoint, buildColorClassifier().model);
    await registerModel('unheard', checkpoint);
    const proxy = await tcpProxy(Number(new URL(db.url).port));
    const relayed = new URL(db.url);
    relayed.port = String(proxy.port);
    const p = await startPredictor(relayed.toString());
    try {
      const red = { model: 'unheard', image_url: imageUrl('red') };
      expect((await predict(p.url, red)).body.predicted_label).toBe('red');
      await s3.write(checkpoint, buildColorClassifier({ classes: COLOR_CLASSES.map((c) => ({ ...c, name: `${c.name}-v2` })) }).model);
      // The replica cannot hear the database while another one announces the reload.
      // Counted from here: every listen catches up, the first one at start-up too.
      const count = (re: RegExp) => (p.log().match(re) ?? []).length;
      const [reloadsBefore, catchUpsBefore] = [count(/reloaded/g), count(/reloaded after reload notices could not be heard/g)];
      await proxy.cut();
      await db.ds.query('SELECT pg_notify($1, $2)', [MODEL_RELOADS_CHANNEL, JSON.stringify({ name: 'unheard', origin: 'another-replica' })]);
      await new Promise((r) => setTimeout(r, 500));
      expect(count(/reloaded/g)).toBe(reloadsBefore);
      await proxy.restore();
      const deadline = Date.now() + 30_000;
      while (count(/reloaded after reload notices could not be heard/g) <= catchUpsBefore) {
        if (Date.now() > deadline) throw new Error(`no reload: ${p.log()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      // A fresh cache key: the answer comes from the session loaded again.
      const after = await predict(p.url, { ...red, conf: 0.3 });
      expect([after.body.cached, after.body.predicted_label]).toEqual([false, 'red-v2']);
    } finally {
      p.child.kill('SIGKILL');
      await proxy.close();
    }
  });

  it('reads an API token once, not per request, and still refuses it as soon as it is revoked', async () => {
    const p = await startPredictor();
    const deadline = Date.now() + 30_000;
    while (!/revocations are heard/.test(p.log())) {
      if (Date.now() > deadline) throw new Error(`no token-change listener: ${p.log()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const { token, secret } = await tokens.create({ name: 'revoked while cached', owner: 'carol', role: 'user', expiresAt: null });
    const carol = { authorization: `Bearer ${secret}` };
    const red = { model: 'colors', image_url: imageUrl('red') };
    expect((await predict(p.url, red, carol)).status).toBe(200);
    // Revoked behind the store's back (no notification): the predictor answers from what it read.
    await db.ds.query('UPDATE api_tokens SET revoked_at = now() WHERE id = $1', [token.id]);
    expect((await predict(p.url, red, carol)).status).toBe(200);
    // Revoked as the API and the CLI do it: refused within a notification's time, not the cache's 600 s.
    const revokedAt = Date.now();
    await tokens.revoke(token.id);
    let refused;
    while ((refused = await predict(p.url, red, carol)).status === 200 && Date.now() - revokedAt < 5_000) await new Promise((r) => setTimeout(r, 20));
    expect([refused.status, refused.body.message]).toEqual([401, 'API token revoked']);
    // Another token, still good, is not touched.
    expect((await predict(p.url, red)).status).toBe(200);
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
  });

  it('SIGTERM under load: every request already taken is answered, then the process exits 0, leaving nothing in its home or temporary folder', async () => {
    const p = await startPredictor();
    await predict(p.url, { model: 'slow', image_url: imageUrl('blue') }); // loaded
    const colors = COLOR_CLASSES.map((c) => c.name);
    const inFlight = Array.from({ length: 40 }, (_, i) =>
      predict(p.url, { model: 'slow', image_url: imageUrl(colors[i % colors.length]!), conf: 0.001 * (i + 1) }),
    );
    // SIGTERM once the predictor has taken all 40 (they wait for their batch).
    await untilInFlight(p.url, 40);
    p.child.kill('SIGTERM');
    const answers = await Promise.all(inFlight);
    expect(answers.map((a) => a.status)).toEqual(answers.map(() => 200));
    expect(answers.map((a) => a.body.predicted_label)).toEqual(answers.map((_, i) => colors[i % colors.length]));
    expect(await p.exited).toBe(0);
    await expect(fetch(`${p.url}/healthz`)).rejects.toThrow();
    // Nothing of ONNX Runtime's telemetry (a device id under ~/.cache/Microsoft, mat-debug-<pid>.log
    // files), and its work folder removed.
    expect(p.left()).toEqual({ home: [], tmp: [] });
  });

  it('SIGTERM with a request still waiting when the grace period ends: the process exits 0 and still removes its work folder', async () => {
    const p = await startPredictor(db.url, { KINFER_PREDICTOR_GRACE_SECONDS: '0.5' });
    await predict(p.url, { model: 'slow', image_url: imageUrl('blue') }); // loaded
    // One request waits up to 5 s to be batched: far past the grace period.
    const waiting = predict(p.url, { model: 'slow', image_url: imageUrl('red') });
    waiting.catch(() => undefined); // asserted below
    await untilInFlight(p.url, 1);
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    expect(p.log()).toMatch(/grace period over/);
    await expect(waiting).rejects.toThrow('fetch failed'); // cut off, not answered
    expect(p.left()).toEqual({ home: [], tmp: [] });
  });
});
