// Both services in-process on the real Postgres, fed what a hostile or broken client sends:
// property-based fuzzing of every route's body and query (no 5xx, every refusal from the error
// catalog), payloads that contradict themselves or the stored job, NUL characters, counts past
// the database's int columns, bodies sent without a token, and the database going away behind a
// TCP relay (503 with Retry-After, then recovery without a restart).
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { createCallbackApp } from '../../src/callback/app.ts';
import { TokenVerifier } from '../../src/callback/token-verifier.ts';
import { callbackPaths, parseRunnerEnv, RunnerConfigError } from '../../src/contract/index.ts';
import { createControllerApp } from '../../src/controller/api/app.ts';
import { TokenIssuer } from '../../src/controller/token-issuer.ts';
import { openDatabase } from '../../src/db/data-source.ts';
import { JobStore } from '../../src/db/job-store.ts';
import { HTTP_ERRORS } from '../../src/http/errors.ts';
import {
  FakeTier,
  newTestRun,
  quietLog,
  serve,
  testAccess,
  tokenKeyPair,
  testAdmission,
  testDatabase,
  testPrefix,
  testStorage,
  type Served,
  type TestDatabase,
} from '../support/in-process.ts';
import { tcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';

let db: TestDatabase;
let api: Served;
let callbacks: Served;
let tokens: TokenIssuer;
let prefix: string;

beforeAll(async () => {
  db = await testDatabase();
  const { privateKey, publicKey } = tokenKeyPair();
  tokens = new TokenIssuer(privateKey, 600);
  prefix = testPrefix();
  const access = await testAccess(db.ds);
  api = await serve(
    createControllerApp({
      store: db.store,
      admission: testAdmission(testStorage()),
      log: quietLog(),
      ready: async () => undefined,
      tier: new FakeTier(),
      ...access,
    }),
    access.bearer,
  );
  callbacks = await serve(createCallbackApp({ store: db.store, verifier: new TokenVerifier(publicKey), log: quietLog(), ready: async () => undefined }));
});

afterAll(async () => {
  await api?.close();
  await callbacks?.close();
  await db?.stop();
});

/** A reply a client can act on: below 500 (unless `allow5xx`), and a refusal in the catalog's shape with its status. */
function expectCatalogued(res: { status: number; body: any }, what: string, allow5xx = false): void {
  if (res.status >= 500 && !allow5xx) throw new Error(`${what}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
  if (res.status < 400) return;
  const entry = HTTP_ERRORS[res.body?.error as keyof typeof HTTP_ERRORS];
  if (!entry || entry.status !== res.status || typeof res.body.message !== 'string')
    throw new Error(`${what}: not from the catalog: ${res.status} ${JSON.stringify(res.body)}`);
}

const nasty = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc.constantFrom(
    '\u0000',
    'a\u0000b',
    '/',
    'file:///',
    '/etc/passwd',
    'file:///proc/self/environ',
    '/a/../b',
    's3://bucket/../x',
    '.',
    '..',
    'x'.repeat(5000),
  ),
  fc.integer(),
  fc.constantFrom(2_147_483_648, -1, 1e308, -0, 0.5, Number.MAX_SAFE_INTEGER),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.string(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 }), { maxKeys: 3 }),
);

/** A valid body with some of its fields replaced by nasty values, removed, or joined by unknown ones. */
function mutated(valid: Record<string, unknown>): fc.Arbitrary<unknown> {
  const keys = Object.keys(valid);
  return fc.oneof(
    { weight: 1, arbitrary: fc.anything({ maxDepth: 3 }) },
    {
      weight: 4,
      arbitrary: fc
        .tuple(
          fc.subarray(keys, { minLength: 1 }),
          fc.array(nasty, { minLength: keys.length, maxLength: keys.length }),
          fc.boolean(),
          fc.option(fc.string({ maxLength: 8 })),
        )
        .map(([chosen, values, remove, extra]) => {
          const body: Record<string, unknown> = { ...valid };
          chosen.forEach((k, i) => {
            if (remove && i === 0) delete body[k];
            else body[k] = values[i];
          });
          if (extra !== null) body[extra] = values[0];
          return body;
        }),
    },
  );
}

const RUNS = Number(process.env.KINFER_FUZZ_RUNS ?? 250);

describe('property-based fuzzing of every route', () => {
  it('the REST API answers every generated body and query below 500, from the catalog', async () => {
    const run = { id: await newRun() };
    const posts: Array<[string, Record<string, unknown>]> = [
      [
        '/api/v1/test-runs',
        {
          checkpoint_path: `${prefix}/m.onnx`,
          dataset_path: `${prefix}/d`,
          task_type: 'image_classification',
          dataset_split: 'test',
          name: 'n',
          enable_xai: false,
        },
      ],
      [
        '/api/v1/inference-jobs',
        {
          checkpoint_path: `${prefix}/m.onnx`,
          task_type: 'object_detection',
          inference_type: 'batch',
          input_config: { image_paths: [`${prefix}/a.png`] },
          xai_config: { num_samples: 10 },
        },
      ],
    ];
    for (const [path, valid] of posts) {
      await fc.assert(
        fc.asyncProperty(mutated(valid), async (body) => {
          expectCatalogued(await api.call('POST', path, body), `POST ${path} ${JSON.stringify(body)?.slice(0, 300)}`);
        }),
        { numRuns: RUNS },
      );
    }
    const queryValue = fc.oneof(fc.string(), fc.constantFrom('-1', '2147483648', '1e400', 'NaN', '\u0000', 'true', '0x10'), fc.integer().map(String));
    const gets = [
      '/api/v1/test-runs',
      '/api/v1/inference-jobs',
      `/api/v1/test-runs/${run.id}/images`,
      `/api/v1/test-runs/${run.id}/export`,
      `/api/v1/inference-jobs/${randomUUID()}/results`,
    ];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...gets),
        fc.dictionary(fc.constantFrom('skip', 'limit', 'status', 'filter_correct', 'format', 'x'), queryValue, { maxKeys: 4 }),
        fc.oneof(
          fc.constant(''),
          fc.string({ maxLength: 40 }).map((s) => `/${encodeURIComponent(s)}`),
        ),
        async (path, query, suffix) => {
          const url = `${path}${suffix}?${new URLSearchParams(query)}`;
          expectCatalogued(await api.call('GET', url), `GET ${url}`);
          expectCatalogued(await api.call('POST', `${path}${suffix}/cancel?${new URLSearchParams(query)}`), `POST cancel ${url}`);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('the callback service answers every generated payload below 500, and the job stays consistent', async () => {
    const [testRun, job] = [await newRun(), await newInferenceJob()];
    const counts = { processed_images: 2, total_images: 4, failed_images: 1, results_path: null, timings: null };
    const routes: Array<[string, Record<string, unknown>, string]> = [
      [callbackPaths.progress(testRun), { processed_images: 1, total_images: 4, failed_images: 0, message: 'm' }, testRun],
      [callbackPaths.imageResults('test_run', testRun), { results: [result(0)] }, testRun],
      [callbackPaths.imageResults('inference_job', job), { results: [result(0)] }, job],
      [callbackPaths.done('test_run', testRun), { status: 'failed', ...counts, error_message: 'x', error_code: 'RUNNER_ERROR' }, testRun],
      [callbackPaths.done('inference_job', job), { status: 'completed', ...counts, processed_images: 4, failed_images: 0, metrics: null }, job],
    ];
    for (const [path, valid, id] of routes) {
      const kind = id === testRun ? 'test_run' : 'inference_job';
      await fc.assert(
        fc.asyncProperty(mutated(valid), fc.boolean(), async (body, withToken) => {
          const res = await callbacks.call('POST', path, body, withToken ? { authorization: `Bearer ${tokens.issue(kind, id)}` } : {});
          expectCatalogued(res, `POST ${path} ${JSON.stringify(body)?.slice(0, 300)}`);
          if (!withToken) expect(res.status).toBe(401);
        }),
        { numRuns: RUNS },
      );
    }
    for (const [kind, id] of [
      ['test_run', testRun],
      ['inference_job', job],
    ] as const) {
      const row = (await db.store.get(kind, id))!;
      expect(row.failed_images).toBeLessThanOrEqual(row.processed_images);
      if (row.total_images !== null) expect(row.processed_images).toBeLessThanOrEqual(row.total_images);
    }
  });

  it("the runner's environment parser refuses what is not a configuration with RunnerConfigError, never a crash", () => {
    const names = [
      'JOB_ID',
      'TRACE_ID',
      'INFERENCE_TYPE',
      'BACKEND_BASE_URL',
      'CALLBACK_TOKEN',
      'TASK_TYPE',
      'CHECKPOINT_PATH',
      'DATASET_PATH',
      'INPUT_CONFIG',
      'BATCH_SIZE',
      'CONF_THRESHOLD',
      'XAI_IMAGES',
      'HEARTBEAT_SECONDS',
    ];
    const valid: Record<string, string> = {
      JOB_ID: randomUUID(),
      TRACE_ID: 't',
      INFERENCE_TYPE: 'batch',
      BACKEND_BASE_URL: 'http://127.0.0.1:8081',
      CALLBACK_TOKEN: 'x',
      TASK_TYPE: 'object_detection',
      CHECKPOINT_PATH: 's3://models/m.onnx',
      INPUT_CONFIG: '{"image_paths":["s3://data/a.png"]}',
      ARTIFACTS_URI: 's3://artifacts',
    };
    fc.assert(
      fc.property(
        fc.dictionary(fc.constantFrom(...names), fc.oneof(fc.string(), fc.constantFrom('', '-1', '1e999', '{', '[]', 'null', 'first:0', 'nan')), {
          maxKeys: 5,
        }),
        (changes) => {
          try {
            parseRunnerEnv({ ...valid, ...changes });
          } catch (err) {
            if (!(err instanceof RunnerConfigError)) throw err;
            expect(err.problems.length).toBeGreaterThan(0);
          }
        },
      ),
      { numRuns: RUNS * 8 },
    );
  });
});

const newRun = () => newTestRun(db.store);
const newInferenceJob = async (paths = [`${prefix}/a.png`]) =>
  (
    await db.store.createInferenceJob({
      checkpoint_path: `${prefix}/m.onnx`,
      task_type: 'object_detection',
      inference_type: 'batch',
      input_config: { image_paths: paths },
      name: null,
      enable_xai: false,
      xai_method: null,
      xai_config: null,
    })
  ).id;
const auth = (id: string, kind: 'test_run' | 'inference_job' = 'test_run') => ({ authorization: `Bearer ${tokens.issue(kind, id)}` });
const result = (i: number, extra: Record<string, unknown> = {}) => ({
  image_index: i,
  image_path: `${prefix}/${i}.png`,
  predicted_class_id: 0,
  predicted_label: 'a',
  confidence: 0.5,
  predictions: [{ class_id: 0, class_name: 'a', confidence: 0.5 }],
  timings: null,
  error: null,
  ...extra,
});

describe('callback payloads that contradict themselves or the stored job', () => {
  const none = { results_path: null, timings: null };

  it('refuses incoherent counts with the field named', async () => {
    const id = await newRun();
    const replies = [
      await callbacks.call('POST', callbackPaths.progress(id), { processed_images: 3, failed_images: 4 }, auth(id)),
      await callbacks.call('POST', callbackPaths.progress(id), { processed_images: 5, total_images: 3 }, auth(id)),
      await callbacks.call('POST', callbackPaths.progress(id), { processed_images: 2_147_483_648 }, auth(id)),
      await callbacks.call(
        'POST',
        callbackPaths.done('test_run', id),
        { status: 'completed', processed_images: 5, total_images: 3, failed_images: 0, ...none, metrics: null },
        auth(id),
      ),
      await callbacks.call(
        'POST',
        callbackPaths.done('test_run', id),
        { status: 'completed', processed_images: 2, total_images: 3, failed_images: 0, ...none, metrics: null },
        auth(id),
      ),
    ];
    expect(replies.map((r) => [r.status, r.body.error, r.body.fields?.[0]?.field])).toEqual([
      [422, 'invalid_payload', 'failed_images'],
      [422, 'invalid_payload', 'processed_images'],
      [422, 'invalid_payload', 'processed_images'],
      [422, 'invalid_payload', 'processed_images'],
      [422, 'invalid_payload', 'processed_images'],
    ]);
    expect(await db.store.get('test_run', id)).toMatchObject({ status: 'pending', processed_images: 0 });
  });

  it('does not complete a job with fewer stored results than it processed; then completes once they arrive', async () => {
    const id = await newRun();
    await callbacks.call('POST', callbackPaths.imageResults('test_run', id), { results: [result(0), result(1)] }, auth(id));
    const done = { status: 'completed', processed_images: 3, total_images: 3, failed_images: 0, ...none, metrics: null };
    const early = await callbacks.call('POST', callbackPaths.done('test_run', id), done, auth(id));
    expect([early.status, early.body.error, early.body.message]).toEqual([
      422,
      'invalid_payload',
      'the runner reports 3 processed images but 2 results are stored',
    ]);
    expect((await db.store.get('test_run', id))!.status).toBe('pending');
    await callbacks.call('POST', callbackPaths.imageResults('test_run', id), { results: [result(2), result(1)] }, auth(id));
    expect((await callbacks.call('POST', callbackPaths.done('test_run', id), done, auth(id))).body).toEqual({ status: 'completed', applied: true });
    expect(Number((await db.ds.query('SELECT count(*)::int AS n FROM test_image_results WHERE test_run_id = $1', [id]))[0].n)).toBe(3);
  });

  it('keeps the counts a job had when its runner reports a failure knowing less', async () => {
    const id = await newRun();
    await callbacks.call('POST', callbackPaths.progress(id), { processed_images: 4, total_images: 10, failed_images: 1 }, auth(id));
    const failed = { status: 'failed', processed_images: 0, total_images: 0, failed_images: 0, ...none, error_message: 'lost the callback service' };
    expect((await callbacks.call('POST', callbackPaths.done('test_run', id), failed, auth(id))).body).toEqual({ status: 'failed', applied: true });
    expect(await db.store.get('test_run', id)).toMatchObject({ status: 'failed', processed_images: 4, total_images: 10, failed_images: 1 });
  });

  it('refuses a NUL anywhere with the field named, and the job goes on to finish normally', async () => {
    const id = await newRun();
    const bad = await callbacks.call(
      'POST',
      callbackPaths.done('test_run', id),
      { status: 'failed', processed_images: 0, total_images: 0, failed_images: 0, ...none, error_message: 'bro\u0000ken' },
      auth(id),
    );
    expect([bad.status, bad.body.fields]).toEqual([422, [{ field: 'error_message', message: 'must not contain NUL characters' }]]);
    const nulLabel = await callbacks.call(
      'POST',
      callbackPaths.imageResults('test_run', id),
      { results: [result(0, { predicted_label: 'a\u0000' })] },
      auth(id),
    );
    expect([nulLabel.status, nulLabel.body.fields]).toEqual([422, [{ field: 'results.0.predicted_label', message: 'must not contain NUL characters' }]]);
    const ok = await callbacks.call(
      'POST',
      callbackPaths.done('test_run', id),
      { status: 'failed', processed_images: 0, total_images: 0, failed_images: 0, ...none, error_message: 'x' },
      auth(id),
    );
    expect(ok.body).toEqual({ status: 'failed', applied: true });
    const rest = await api.call('POST', '/api/v1/test-runs', {
      checkpoint_path: `${prefix}/m.onnx`,
      dataset_path: `${prefix}/d`,
      task_type: 'image_classification',
      name: 'a\u0000',
    });
    expect([rest.status, rest.body.fields]).toEqual([400, [{ field: 'name', message: 'must not contain NUL characters' }]]);
  });

  it('stores a class name of any length (a 300-character label once failed every result)', async () => {
    const id = await newRun();
    const long = 'n'.repeat(300);
    const res = await callbacks.call(
      'POST',
      callbackPaths.imageResults('test_run', id),
      { results: [result(0, { predicted_label: long, predictions: [{ class_id: 0, class_name: long, confidence: 0.5 }], true_label: long })] },
      auth(id),
    );
    expect(res.body).toEqual({ status: 'pending', applied: true });
    expect((await db.store.listTestImages(id, { skip: 0, limit: 1 })).items[0]).toMatchObject({ predicted_label: long, true_label: long });
  });

  it('checks the token before it reads the body: no token is 401 even for malformed JSON or 7 MB', async () => {
    const id = await newRun();
    const malformed = await callbacks.call('POST', callbackPaths.progress(id), '{"not json');
    const big = await fetch(`${callbacks.url}${callbackPaths.imageResults('test_run', id)}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: `{"results":["${'x'.repeat(7 << 20)}"]}`,
    }).catch((err: Error) => err);
    expect([malformed.status, malformed.body.error]).toEqual([401, 'unauthorized']);
    // The service answers 401 and closes the connection without reading the body: the client
    // sees the 401, or its upload cut short; never a parsed body's 400, 413 or 422.
    if (!(big instanceof Error)) expect([big.status, ((await big.json()) as { error: string }).error]).toEqual([401, 'unauthorized']);
    const withToken = await callbacks.call('POST', callbackPaths.progress(id), '{"not json', auth(id));
    expect([withToken.status, withToken.body.error]).toEqual([400, 'bad_request']);
  });

  it("gives a runner its job's input list, too long for the environment, and nothing of another job's", async () => {
    const paths = Array.from({ length: 3000 }, (_, i) => `${prefix}/images/some/long/folder/name/image-${String(i).padStart(6, '0')}.png`);
    const id = await newInferenceJob(paths);
    const res = await callbacks.call('GET', callbackPaths.input(id), undefined, auth(id, 'inference_job'));
    expect([res.status, res.body.input_config.image_paths.length, res.body.input_config.image_paths[2999]]).toEqual([200, 3000, paths[2999]]);
    const other = await newInferenceJob();
    expect((await callbacks.call('GET', callbackPaths.input(id), undefined, auth(other, 'inference_job'))).status).toBe(403);
    expect((await callbacks.call('GET', callbackPaths.input(id))).status).toBe(401);
  });
});

describe('the database going away behind a TCP relay', () => {
  let proxy: TcpProxy;
  let cutApi: Served;
  let cutCallbacks: Served;
  let cutIssuer: TokenIssuer;
  let store: JobStore;
  let close: () => Promise<void>;

  beforeAll(async () => {
    const direct = new URL(db.url);
    proxy = await tcpProxy(Number(direct.port));
    direct.port = String(proxy.port);
    const ds = await openDatabase(direct.toString(), { migrate: false, poolSize: 2 });
    store = new JobStore(ds);
    const ready = async () => {
      await ds.query('SELECT 1');
    };
    const cutAccess = await testAccess(ds);
    cutApi = await serve(
      createControllerApp({ store, admission: testAdmission(testStorage()), log: quietLog(), ready, tier: new FakeTier(), ...cutAccess }),
      cutAccess.bearer,
    );
    const { publicKey, privateKey } = tokenKeyPair();
    cutIssuer = new TokenIssuer(privateKey, 600);
    cutCallbacks = await serve(createCallbackApp({ store, verifier: new TokenVerifier(publicKey), log: quietLog(), ready }));
    close = async () => {
      await cutApi.close();
      await cutCallbacks.close();
      await ds.destroy();
      await proxy.close();
    };
  });

  afterAll(async () => {
    await close?.();
  });

  it('answers 503 database_unavailable with Retry-After, readiness without internals, and recovers by itself', async () => {
    // A progress report is a prepared statement on the pool's connections (db/prepared.ts): it
    // is refused the same way, and prepared again on the new connections.
    const run = await newTestRun(store);
    const runner = { authorization: `Bearer ${cutIssuer.issue('test_run', run)}` };
    const report = (n: number) => cutCallbacks.call('POST', callbackPaths.progress(run), { processed_images: n, total_images: 4, failed_images: 0 }, runner);
    expect((await cutApi.call('GET', '/api/v1/test-runs')).status).toBe(200);
    expect((await report(1)).status).toBe(200);
    await proxy.cut();
    const replies = [await cutApi.call('GET', '/api/v1/test-runs'), await cutApi.call('GET', `/api/v1/test-runs/${randomUUID()}`), await report(2)];
    for (const r of replies) {
      expect([r.status, r.body.error, r.headers.get('retry-after')]).toEqual([503, 'database_unavailable', '5']);
      expectCatalogued(r, 'outage', true);
    }
    const ready = await cutApi.call('GET', '/readyz');
    expect([ready.status, ready.body]).toEqual([503, { status: 'not_ready', message: 'the database is unreachable' }]);
    expect((await cutCallbacks.call('GET', '/readyz')).status).toBe(503);
    expect((await cutApi.call('GET', '/healthz')).status).toBe(200);
    await proxy.restore();
    expect((await cutApi.call('GET', '/api/v1/test-runs')).status).toBe(200);
    expect((await cutApi.call('GET', '/readyz')).body).toEqual({ status: 'ready' });
    expect((await report(3)).status).toBe(200);
    expect((await store.get('test_run', run))?.processed_images).toBe(3);
  });
});
