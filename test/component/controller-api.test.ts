// The controller's REST API in-process, on the real Postgres and S3 server, with a FAKE tier in
// place of the subprocess or Kubernetes tier: the admission's refusals, the hand-over to the
// tier, the error catalog, and storage that does not answer.
import { createServer, type Server } from 'node:net';
import { Admission } from '../../src/controller/admission/admission.ts';
import { ModelInspector } from '../../src/controller/admission/model-inspector.ts';
import { createControllerApp } from '../../src/controller/api/app.ts';
import { HTTP_ERRORS } from '../../src/http/errors.ts';
import { StorageClient } from '../../src/storage/object-store.ts';
import {
  FakeTier,
  quietLog,
  serve,
  testAccess,
  testAdmission,
  testDatabase,
  testPrefix,
  testStorage,
  type Served,
  type TestDatabase,
} from '../support/in-process.ts';
import { invalidJobCases, type InvalidCase } from '../support/invalid-jobs.ts';

let db: TestDatabase;
let api: Served;
let tier: FakeTier;
let cases: InvalidCase[];
let prefix: string;
let access: Awaited<ReturnType<typeof testAccess>>;

const ready = async () => undefined;

beforeAll(async () => {
  db = await testDatabase();
  const storage = testStorage();
  prefix = testPrefix();

  tier = new FakeTier();
  access = await testAccess(db.ds);
  cases = await invalidJobCases(storage, prefix, access.models);
  api = await serve(
    createControllerApp({ store: db.store, admission: testAdmission(storage, 10_000, access.models), log: quietLog(), ready, tier, ...access }),
    access.bearer,
  );
});

afterAll(async () => {
  await api?.close();
  await db?.stop();
});

const valid = () => ({ checkpoint_path: `${prefix}/models/colors.onnx`, dataset_path: `${prefix}/data/colors`, task_type: 'image_classification' });

describe('the admission at the REST door', () => {
  it('refuses every invalid request of the table with its fields, and stores nothing', async () => {
    for (const c of cases) {
      const res = await api.call('POST', `/api/v1${c.rest.path}`, c.rest.body);
      expect([c.name, res.status, res.body.error]).toEqual([c.name, 400, 'validation_error']);
      expect([c.name, res.body.fields]).toEqual([
        c.name,
        c.expected.map((e) => ({ field: e.field, message: typeof e.message === 'string' ? e.message : expect.stringMatching(e.message) })),
      ]);
    }
    expect(
      Number((await db.ds.query('SELECT count(*)::int AS n FROM test_runs'))[0].n) +
        Number((await db.ds.query('SELECT count(*)::int AS n FROM inference_jobs'))[0].n),
    ).toBe(0);
  });

  it('stores a valid request as pending and hands it to the tier', async () => {
    const res = await api.call('POST', '/api/v1/test-runs', { ...valid(), name: 'ok', xai_config: { num_samples: 10 } });
    expect(res.status).toBe(201);
    expect(res.headers.get('location')).toBe(`/api/v1/test-runs/${res.body.id}`);
    expect(res.body).toMatchObject({ status: 'pending', name: 'ok', dataset_split: 'test', xai_config: { num_samples: 10 }, error_code: null });
    expect(tier.created).toContainEqual({ kind: 'test_run', id: res.body.id });
  });
});

describe('errors from the catalog', () => {
  it('fails a job the tier could not take, 503 executor_unavailable, with its code', async () => {
    tier.fail = new Error('no executor');
    try {
      const res = await api.call('POST', '/api/v1/test-runs', valid());
      expect(res.status).toBe(503);
      expect(res.body).toMatchObject({ error: 'executor_unavailable', id: expect.any(String) });
      expect(await db.store.get('test_run', res.body.id)).toMatchObject({ status: 'failed', error_code: 'EXECUTOR_UNAVAILABLE' });
    } finally {
      tier.fail = undefined;
    }
  });

  it('cancels once: 200, then 409 conflict', async () => {
    const created = await api.call('POST', '/api/v1/test-runs', valid());
    const first = await api.call('POST', `/api/v1/test-runs/${created.body.id}/cancel`);
    expect(first.body).toMatchObject({ status: 'cancelled', error_code: 'CANCELLED_BY_USER' });
    expect(tier.cancelled).toContainEqual({ kind: 'test_run', id: created.body.id });
    const again = await api.call('POST', `/api/v1/test-runs/${created.body.id}/cancel`);
    expect([again.status, again.body.error]).toEqual([409, 'conflict']);
  });

  it('names each unknown field on its own, and says what a body that is not a JSON object is', async () => {
    const created = tier.created.length;
    const unknown = await api.call('POST', '/api/v1/test-runs', { ...valid(), model_uri: 'x', batch: 4 });
    expect([unknown.status, unknown.body.error, unknown.body.fields]).toEqual([
      400,
      'validation_error',
      [
        { field: 'model_uri', message: 'unknown field' },
        { field: 'batch', message: 'unknown field' },
      ],
    ]);
    for (const [body, what] of [
      ['null', 'null'],
      [' 42', 'a number'],
      ['"a test run"', 'a string'],
      ['true', 'a boolean'],
    ]) {
      const res = await api.call('POST', '/api/v1/test-runs', body);
      expect([body, res.status, res.body.error, res.body.message]).toEqual([body, 400, 'bad_request', `the body must be a JSON object, not ${what}`]);
    }
    // curl --data without a Content-Type sends a form; text/plain is a JSON body mislabelled.
    for (const type of ['application/x-www-form-urlencoded', 'text/plain']) {
      const res = await api.call('POST', '/api/v1/test-runs', JSON.stringify(valid()), { 'content-type': type });
      expect([res.status, res.body.error, res.body.message]).toEqual([
        415,
        'unsupported_media_type',
        `the body must be sent as JSON (Content-Type: application/json), not as ${type}`,
      ]);
    }
    const broken = await api.call('POST', '/api/v1/test-runs', '{"not json');
    expect([broken.status, broken.body.message]).toEqual([400, expect.stringMatching(/^the body is not valid JSON: \S/)]);
    expect(tier.created.length).toBe(created);
  });

  it('answers every error with a code from the catalog and its status', async () => {
    const replies = [
      await api.call('GET', '/api/v1/nowhere'),
      await api.call('GET', '/api/v1/test-runs/not-a-uuid'),
      await api.call('POST', '/api/v1/test-runs', '{"not json'),
      await api.call('POST', '/api/v1/inference-jobs', { x: 'y'.repeat(3 << 20) }),
      await api.call('GET', '/api/v1/test-runs?skip=-1'),
    ];
    expect(replies.map((r) => [r.status, r.body.error])).toEqual([
      [404, 'not_found'],
      [404, 'not_found'],
      [400, 'bad_request'],
      [413, 'payload_too_large'],
      [400, 'validation_error'],
    ]);
    for (const r of replies) expect(HTTP_ERRORS[r.body.error as keyof typeof HTTP_ERRORS].status).toBe(r.status);
    // A page's numbers: what is wanted, and what came.
    const pages = await Promise.all(['limit=abc', 'limit=2&limit=3', 'skip=-1', 'limit=1e3'].map((q) => api.call('GET', `/api/v1/test-runs?${q}`)));
    expect(pages.map((r) => [r.status, r.body.fields])).toEqual([
      [400, [{ field: 'limit', message: 'a whole number from 1 to 1000, not "abc"' }]],
      [400, [{ field: 'limit', message: 'a whole number from 1 to 1000, given once' }]],
      [400, [{ field: 'skip', message: 'a whole number from 0 to 2147483647, not "-1"' }]],
      [400, [{ field: 'limit', message: 'a whole number from 1 to 1000, not "1e3"' }]],
    ]);
    const page = await api.call('GET', '/api/v1/test-runs?limit=7&skip=0');
    expect([page.status, page.body.limit, page.body.skip]).toEqual([200, 7, 0]);
    // What was asked, without its query (it may carry what must not be echoed), and where the routes are.
    const nowhere = await api.call('PATCH', '/api/v1/models/colors/1?token=kinfer_secret');
    expect([nowhere.status, nowhere.body.message]).toEqual([404, 'no such endpoint: PATCH /api/v1/models/colors/1 (see /api/v1/openapi.json)']);
  });
});

describe('object storage that does not answer', () => {
  let blackHole: Server;
  let stalled: Served;

  beforeAll(async () => {
    // Accepts connections and never answers, as a hung S3 endpoint does.
    blackHole = createServer(() => undefined);
    await new Promise<void>((resolve) => blackHole.listen(0, '127.0.0.1', resolve));
    const storage = new StorageClient({
      endpoint: `http://127.0.0.1:${(blackHole.address() as { port: number }).port}`,
      region: 'us-east-1',
      accessKeyId: 'x',
      secretAccessKey: 'y',
    });
    const admission = new Admission({ storage, models: new ModelInspector(storage), timeoutMs: 700 });
    stalled = await serve(createControllerApp({ store: db.store, admission, log: quietLog(), ready, tier: new FakeTier(), ...access }), access.bearer);
  });

  afterAll(async () => {
    await stalled?.close();
    blackHole?.close();
  });

  it('answers 503 storage_unavailable after the timeout, and creates nothing', async () => {
    const before = Number((await db.ds.query('SELECT count(*)::int AS n FROM test_runs'))[0].n);
    const started = Date.now();
    const res = await stalled.call('POST', '/api/v1/test-runs', {
      checkpoint_path: 's3://models/m.onnx',
      dataset_path: 's3://datasets/d',
      task_type: 'image_classification',
    });
    expect(res.status).toBe(503);
    expect(res.body).toEqual({ error: 'storage_unavailable', message: 'object storage did not answer the submit-time checks within 0.7s' });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(Number((await db.ds.query('SELECT count(*)::int AS n FROM test_runs'))[0].n)).toBe(before);
  });
});
