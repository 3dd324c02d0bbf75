// The model registry, request validation and capabilities on the REST API in-process, with the
// real Postgres and S3 server: registration reads the ONNX file as the admission does, stages
// move with one production version per name, and jobs name models by name@version or name:stage.
import { buildColorClassifier, COLOR_CLASSES } from '../../src/samples/color-classifier.ts';
import { buildColorDataset } from '../../src/samples/color-dataset.ts';
import { createControllerApp } from '../../src/controller/api/app.ts';
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

let db: TestDatabase;
let api: Served;
let prefix: string;
let access: Awaited<ReturnType<typeof testAccess>>;
let alice: Record<string, string>;
let bob: Record<string, string>;

beforeAll(async () => {
  db = await testDatabase();
  prefix = testPrefix();
  const storage = testStorage();
  await storage.write(`${prefix}/models/colors.onnx`, buildColorClassifier().model);
  await storage.write(`${prefix}/models/bogus.onnx`, new TextEncoder().encode('not a model'));
  for (const f of await buildColorDataset({ perClass: 1 })) await storage.write(`${prefix}/data/${f.path}`, f.bytes);
  access = await testAccess(db.ds);
  const token = async (owner: string) => ({
    authorization: `Bearer ${(await access.tokens.create({ name: 't', owner, role: 'user', expiresAt: null })).secret}`,
  });
  [alice, bob] = [await token('alice'), await token('bob')];
  api = await serve(
    createControllerApp({
      store: db.store,
      admission: testAdmission(storage, 10_000, access.models),
      log: quietLog(),
      ready: async () => undefined,
      tier: new FakeTier(),
      ...access,
    }),
  );
});

afterAll(async () => {
  await api?.close();
  await db?.stop();
});

const model = () => `${prefix}/models/colors.onnx`;
const register = (body: Record<string, unknown>, who = alice) =>
  api.call('POST', '/api/v1/models', { name: 'colors', task_type: 'image_classification', checkpoint_path: model(), ...body }, who);

describe('the model registry', () => {
  it('registers a version after reading its ONNX file, with what the file says; refuses what would not serve', async () => {
    const v1 = await register({ version: '1.0.0', tags: { team: 'vision' }, metrics: { accuracy: 0.97 } });
    expect(v1.status).toBe(201);
    expect(v1.body).toMatchObject({
      name: 'colors',
      version: '1.0.0',
      stage: 'none',
      created_by: 'alice',
      tags: { team: 'vision' },
      metrics: { accuracy: 0.97 },
      metadata: { class_names: COLOR_CLASSES.map((c) => c.name), input_size: [expect.any(Number), expect.any(Number)], num_classes: COLOR_CLASSES.length },
    });
    const refusals = [
      await register({ version: '1.0.0' }),
      await register({ version: '9', checkpoint_path: `${prefix}/models/bogus.onnx` }),
      await register({ version: '9', checkpoint_path: `${prefix}/models/none.onnx` }),
      await register({ version: '9', checkpoint_path: '/etc/passwd' }),
      await register({ version: '9', task_type: 'object_detection' }),
      await register({ version: 'has space' }),
    ];
    expect(refusals.map((r) => [r.status, r.body.error, r.body.fields?.[0]?.field])).toEqual([
      [409, 'conflict', undefined],
      [400, 'validation_error', 'checkpoint_path'],
      [400, 'validation_error', 'checkpoint_path'],
      [400, 'validation_error', 'checkpoint_path'],
      [400, 'validation_error', 'task_type'],
      [400, 'validation_error', 'version'],
    ]);
    expect(refusals[2]!.body.fields[0].message).toBe(`no such object: ${prefix}/models/none.onnx`);
    expect(refusals[3]!.body.fields[0].message).toMatch(/^not an allowed storage location: \/etc\/passwd/);
  });

  it('keeps one production version per name: promoting another archives it', async () => {
    expect((await api.call('PATCH', '/api/v1/models/colors/versions/1.0.0', { stage: 'production' }, alice)).body.stage).toBe('production');
    expect((await register({ version: '2.0.0', stage: 'production' })).status).toBe(201);
    const listed = await api.call('GET', '/api/v1/models?name=colors', undefined, bob);
    expect(Object.fromEntries(listed.body.items.map((m: { version: string; stage: string }) => [m.version, m.stage]))).toEqual({
      '1.0.0': 'archived',
      '2.0.0': 'production',
    });
    expect((await api.call('GET', '/api/v1/models/colors/versions/2.0.0', undefined, bob)).body.stage).toBe('production');
    expect((await api.call('GET', '/api/v1/models/colors/versions/7.0.0', undefined, bob)).status).toBe(404);
  });

  it('lets jobs name a model: name@version, name:stage, name (production); the entry is kept on the job', async () => {
    const run = (ref: string | undefined, extra: Record<string, unknown> = {}) =>
      api.call(
        'POST',
        '/api/v1/test-runs',
        { ...(ref === undefined ? {} : { model: ref }), dataset_path: `${prefix}/data`, task_type: 'image_classification', ...extra },
        alice,
      );
    for (const [ref, version] of [
      ['colors@1.0.0', '1.0.0'],
      ['colors:production', '2.0.0'],
      ['colors', '2.0.0'],
    ] as const) {
      const created = await run(ref);
      expect([ref, created.status, created.body.model_name, created.body.model_version, created.body.checkpoint_path]).toEqual([
        ref,
        201,
        'colors',
        version,
        model(),
      ]);
    }
    const refusals = [
      await run('colors@9.9.9'),
      await run('colors:staging'),
      await run('colours'),
      await run('Colors!'),
      await run('colors', { checkpoint_path: model() }),
      await run(undefined),
    ];
    expect(refusals.map((r) => [r.status, r.body.fields?.[0]])).toEqual([
      [400, { field: 'model', message: 'no registered model colors@9.9.9' }],
      [400, { field: 'model', message: 'colors has no version in stage staging' }],
      [400, { field: 'model', message: 'no registered model colours' }],
      [400, { field: 'model', message: 'the model name must be lowercase letters, digits, . _ - (at most 128)' }],
      [400, { field: 'model', message: 'set checkpoint_path or model, not both' }],
      [400, { field: 'checkpoint_path', message: 'is required (or model)' }],
    ]);
  });

  it("splits a name's traffic over registered versions, and sets a version's dynamic batching", async () => {
    const put = (body: unknown, who = alice) => api.call('PUT', '/api/v1/models/colors/traffic', body, who);
    const refused = await put({ split: { '2.0.0': 90, '9.9.9': 10 } });
    expect([refused.status, refused.body.fields]).toEqual([400, [{ field: 'split.9.9.9', message: 'no registered model colors@9.9.9' }]]);
    expect((await put({ split: { '2.0.0': 0 } })).status).toBe(400);
    const viewer = `Bearer ${(await access.tokens.create({ name: 'v', owner: 'carol', role: 'viewer', expiresAt: null })).secret}`;
    expect((await put({ split: { '2.0.0': 90 } }, { authorization: viewer })).status).toBe(403);
    const set = await put({ split: { '1.0.0': 10, '2.0.0': 90 }, sticky_header: 'X-User' });
    expect([set.status, set.body.split, set.body.sticky_header]).toEqual([200, { '1.0.0': 10, '2.0.0': 90 }, 'x-user']);
    expect((await api.call('GET', '/api/v1/models/colors/traffic', undefined, bob)).body.split).toEqual({ '1.0.0': 10, '2.0.0': 90 });
    expect((await api.call('DELETE', '/api/v1/models/colors/traffic', undefined, alice)).status).toBe(204);
    expect((await api.call('GET', '/api/v1/models/colors/traffic', undefined, bob)).status).toBe(404);

    const patched = await api.call('PATCH', '/api/v1/models/colors/versions/2.0.0', { serving: { max_batch_size: 16, max_queue_delay_ms: 10 } }, alice);
    expect([patched.status, patched.body.serving, patched.body.stage]).toEqual([200, { max_batch_size: 16, max_queue_delay_ms: 10 }, 'production']);
    const bad = await api.call('PATCH', '/api/v1/models/colors/versions/2.0.0', { serving: { max_batch_size: 0 } }, alice);
    expect([bad.status, bad.body.fields?.[0]?.field]).toEqual([400, 'serving.max_batch_size']);
  });

  it('is deleted by whoever registered a version, or an admin; not by another user', async () => {
    expect((await api.call('DELETE', '/api/v1/models/colors/versions/1.0.0', undefined, bob)).status).toBe(403);
    expect((await api.call('DELETE', '/api/v1/models/colors/versions/1.0.0', undefined, alice)).status).toBe(204);
    expect((await api.call('GET', '/api/v1/models/colors/versions/1.0.0', undefined, alice)).status).toBe(404);
  });
});

describe('request lifecycle', () => {
  it('validates a request without creating it, listing every problem', async () => {
    const before = Number((await db.ds.query('SELECT count(*)::int AS n FROM test_runs'))[0].n);
    const ok = await api.call(
      'POST',
      '/api/v1/validate',
      { kind: 'test_run', request: { model: 'colors', dataset_path: `${prefix}/data`, task_type: 'image_classification' } },
      alice,
    );
    expect(ok.body).toMatchObject({ valid: true, problems: [], model: { classNames: COLOR_CLASSES.map((c) => c.name) } });
    const bad = await api.call(
      'POST',
      '/api/v1/validate',
      { kind: 'test_run', request: { checkpoint_path: model(), dataset_path: `${prefix}/none`, task_type: 'object_detection' } },
      alice,
    );
    expect(bad.body.valid).toBe(false);
    expect(bad.body.problems.map((p: { field: string }) => p.field).sort()).toEqual(['dataset_path', 'task_type']);
    const shape = await api.call('POST', '/api/v1/validate', { kind: 'inference_job', request: { task_type: 'nope' } }, alice);
    expect(shape.body.valid).toBe(false);
    expect(shape.body.problems.map((p: { field: string }) => p.field)).toEqual(expect.arrayContaining(['task_type', 'inference_type']));
    expect(Number((await db.ds.query('SELECT count(*)::int AS n FROM test_runs'))[0].n)).toBe(before);
  });

  it('says what this installation can do', async () => {
    const caps = await api.call('GET', '/api/v1/capabilities', undefined, bob);
    expect(caps.status).toBe(200);
    expect(caps.body).toMatchObject({
      task_types: ['image_classification', 'object_detection', 'instance_segmentation', 'semantic_segmentation', 'pose_estimation'],
      xai_methods: expect.arrayContaining(['gradcam', 'lime', 'shap']),
      execution_providers: expect.arrayContaining([{ name: 'cpu', bundled: true }]),
      limits: { max_image_paths: 10_000 },
      versions: { kinfer: '0.1.0', onnxruntime: expect.stringMatching(/^1\.\d+\.\d+$/) },
    });
    expect(typeof caps.body.gpu_visible_here).toBe('boolean');
    expect((await api.call('GET', '/api/v1/capabilities')).status).toBe(401);
  });
});
