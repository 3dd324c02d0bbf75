// The callback service on its own: who may call, what it accepts, and that state only moves
// forward. Jobs are inserted held by a fake executor name so that no runner picks them up.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { callbackPaths, TOKEN_AUDIENCE, TOKEN_ISSUER, type DonePayload, type ImageResult } from '../../src/contract/index.ts';
import { startTestStack, type TestStack } from '../support/test-stack.ts';

let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  await stack?.stop();
});

async function insertRun(): Promise<string> {
  const id = randomUUID();
  await stack.db.query(
    `INSERT INTO test_runs (id, checkpoint_path, dataset_path, task_type, trace_id, executor) VALUES ($1, 's3://m/m.onnx', 's3://d/d', 'image_classification', 't', 'held-by-test')`,
    [id],
  );
  return id;
}

function token(sub: string, opts: { kind?: string; key?: string; expiresIn?: number; audience?: string; algorithm?: jwt.Algorithm } = {}): string {
  return jwt.sign({ kind: opts.kind ?? 'test_run' }, opts.key ?? stack.privateKey, {
    algorithm: opts.algorithm ?? 'ES256',
    subject: sub,
    audience: opts.audience ?? TOKEN_AUDIENCE,
    issuer: TOKEN_ISSUER,
    expiresIn: opts.expiresIn ?? 600,
  });
}

const bearer = (t: string) => ({ authorization: `Bearer ${t}`, 'x-trace-id': 'trace-callback-test' });
const progress = { processed_images: 1, total_images: 10 };

const result = (i: number): ImageResult => ({
  image_index: i,
  image_path: `red/${i}.png`,
  predicted_class_id: 0,
  predicted_label: 'red',
  confidence: 0.9,
  predictions: [{ class_id: 0, class_name: 'red', confidence: 0.9 }],
  true_class_id: 0,
  true_label: 'red',
  is_correct: true,
  timings: { preprocess_ms: 1, inference_ms: 1 },
  error: null,
});

const done: DonePayload = {
  status: 'completed',
  processed_images: 10,
  total_images: 10,
  failed_images: 0,
  results_path: 's3://a/test-runs/x/results.json',
  timings: null,
  metrics: {
    overall_metrics: { accuracy: 0.9 },
    per_class_metrics: [],
    confusion_matrix: [[9]],
    class_names: ['red'],
    primary_metric_name: 'accuracy',
    primary_metric_value: 0.9,
  },
};

describe('callback authentication', () => {
  let id: string;
  beforeAll(async () => {
    id = await insertRun();
  });

  it('401 without a token', async () => {
    const res = await stack.callback(callbackPaths.progress(id), progress);
    expect(res.status).toBe(401);
    expect(res.body.message).toMatch(/missing bearer token/);
  });

  it('401 for an expired token', async () => {
    const res = await stack.callback(callbackPaths.progress(id), progress, bearer(token(id, { expiresIn: -10 })));
    expect(res.status).toBe(401);
    expect(res.body.message).toMatch(/expired/);
  });

  it('401 for a token signed by another key (forged)', async () => {
    const { privateKey } = generateKeyPairSync('ec', {
      namedCurve: 'prime256v1',
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    });
    const res = await stack.callback(callbackPaths.progress(id), progress, bearer(token(id, { key: privateKey })));
    expect(res.status).toBe(401);
  });

  it('401 for an HMAC token made with the public key as secret (algorithm confusion)', async () => {
    const forged = jwt.sign({ kind: 'test_run' }, stack.publicKey, {
      algorithm: 'HS256',
      subject: id,
      audience: TOKEN_AUDIENCE,
      issuer: TOKEN_ISSUER,
      expiresIn: 600,
    });
    expect((await stack.callback(callbackPaths.progress(id), progress, bearer(forged))).status).toBe(401);
  });

  it('401 for a token meant for another audience', async () => {
    expect((await stack.callback(callbackPaths.progress(id), progress, bearer(token(id, { audience: 'someone-else' })))).status).toBe(401);
  });

  it("403 for another job's token", async () => {
    const other = await insertRun();
    const res = await stack.callback(callbackPaths.progress(id), progress, bearer(token(other)));
    expect(res.status).toBe(403);
    expect(res.body.message).toMatch(/another job/);
  });

  it('403 for a token of the other kind', async () => {
    const res = await stack.callback(callbackPaths.done('test_run', id), done, bearer(token(id, { kind: 'inference_job' })));
    expect(res.status).toBe(403);
  });

  it('404 for a job that does not exist', async () => {
    const ghost = randomUUID();
    expect((await stack.callback(callbackPaths.progress(ghost), progress, bearer(token(ghost)))).status).toBe(404);
  });

  it('422 naming the bad field', async () => {
    const res = await stack.callback(callbackPaths.progress(id), { processed_images: -1 }, bearer(token(id)));
    expect(res.status).toBe(422);
    expect(res.body.fields).toEqual([{ field: 'processed_images', message: expect.any(String) }]);
  });

  it('leaves the job untouched after every refusal', async () => {
    const { rows } = await stack.db.query('SELECT status, processed_images FROM test_runs WHERE id = $1', [id]);
    expect(rows[0]).toEqual({ status: 'pending', processed_images: 0 });
  });
});

describe('forward-only, idempotent updates', () => {
  it('moves pending -> running -> completed, ignores repeats and late calls', async () => {
    const id = await insertRun();
    const auth = bearer(token(id));
    const p1 = await stack.callback(callbackPaths.progress(id), { processed_images: 5, total_images: 10 }, auth);
    expect(p1).toEqual({ status: 200, body: { status: 'running', applied: true } });
    // An out-of-order, older progress never moves the counter back.
    await stack.callback(callbackPaths.progress(id), { processed_images: 2, total_images: 10 }, auth);
    let row = (await stack.db.query('SELECT processed_images, progress_percent FROM test_runs WHERE id = $1', [id])).rows[0];
    expect(row).toEqual({ processed_images: 5, progress_percent: 50 });

    // Every image's result: a completed report needs one stored per processed image.
    const batch = Array.from({ length: 10 }, (_, i) => result(i));
    expect((await stack.callback(callbackPaths.imageResults('test_run', id), { results: batch }, auth)).status).toBe(200);
    // The same batch again (a retry) stores nothing twice.
    expect((await stack.callback(callbackPaths.imageResults('test_run', id), { results: batch }, auth)).status).toBe(200);
    expect((await stack.db.query('SELECT count(*)::int AS n FROM test_image_results WHERE test_run_id = $1', [id])).rows[0].n).toBe(10);

    expect(await stack.callback(callbackPaths.done('test_run', id), done, auth)).toEqual({ status: 200, body: { status: 'completed', applied: true } });
    // A repeated done is harmless; a late failed done changes nothing.
    expect(await stack.callback(callbackPaths.done('test_run', id), done, auth)).toEqual({ status: 200, body: { status: 'completed', applied: false } });
    const lateFail = await stack.callback(callbackPaths.done('test_run', id), { ...done, status: 'failed', error_message: 'late' }, auth);
    expect(lateFail.body).toEqual({ status: 'completed', applied: false });
    // Late progress and results are refused with 409 and the state the runner should stop on.
    expect(await stack.callback(callbackPaths.progress(id), { processed_images: 1 }, auth)).toEqual({
      status: 409,
      body: { status: 'completed', applied: false },
    });
    expect((await stack.callback(callbackPaths.imageResults('test_run', id), { results: [result(7)] }, auth)).status).toBe(409);

    row = (await stack.db.query('SELECT status, processed_images, error_message, primary_metric_value FROM test_runs WHERE id = $1', [id])).rows[0];
    expect(row).toEqual({ status: 'completed', processed_images: 10, error_message: null, primary_metric_value: 0.9 });
    expect((await stack.db.query('SELECT count(*)::int AS n FROM test_image_results WHERE test_run_id = $1', [id])).rows[0].n).toBe(10);
  });

  it('refuses a report that would leave more images processed than the total, whatever came before it', async () => {
    const id = await insertRun();
    await stack.db.query('UPDATE test_runs SET parallelism = 2 WHERE id = $1', [id]);
    const auth = bearer(token(id));
    const counts = async () => (await stack.db.query('SELECT status, processed_images, total_images FROM test_runs WHERE id = $1', [id])).rows[0];
    const refused = {
      status: 422,
      body: expect.objectContaining({ error: 'invalid_payload', message: expect.stringMatching(/more processed images than the total/) }),
    };
    // Before its total is known, a count is taken as it comes (found by the fuzzing test: 391522007).
    expect((await stack.callback(callbackPaths.progress(id), { processed_images: 7, shard: { index: 0, count: 2 } }, auth)).status).toBe(200);
    // A total below what is counted already, from a shard's report, and from a whole job's.
    expect(await stack.callback(callbackPaths.progress(id), { processed_images: 1, total_images: 4, shard: { index: 1, count: 2 } }, auth)).toEqual(refused);
    expect(await stack.callback(callbackPaths.progress(id), { processed_images: 1, total_images: 4 }, auth)).toEqual(refused);
    // A final report of 4 of 4 while 7 are counted.
    const results = { results: Array.from({ length: 4 }, (_, i) => result(i)) };
    expect((await stack.callback(callbackPaths.imageResults('test_run', id), results, auth)).status).toBe(200);
    expect(await stack.callback(callbackPaths.done('test_run', id), { ...done, processed_images: 4, total_images: 4 }, auth)).toEqual(refused);
    expect(
      await stack.callback(callbackPaths.done('test_run', id), { ...done, status: 'failed', error_message: 'x', processed_images: 1, total_images: 4 }, auth),
    ).toEqual(refused);
    // Nothing of the refused reports was kept; a total that holds them is taken.
    expect(await counts()).toEqual({ status: 'running', processed_images: 7, total_images: null });
    expect(await stack.callback(callbackPaths.progress(id), { processed_images: 8, total_images: 12, shard: { index: 1, count: 2 } }, auth)).toEqual(refused);
    expect((await stack.callback(callbackPaths.progress(id), { processed_images: 3, total_images: 12, shard: { index: 1, count: 2 } }, auth)).status).toBe(200);
    expect(await counts()).toEqual({ status: 'running', processed_images: 10, total_images: 12 });
  });

  it('keeps a cancelled job cancelled when the runner reports afterwards', async () => {
    const id = await insertRun();
    const auth = bearer(token(id));
    await stack.callback(callbackPaths.progress(id), progress, auth);
    expect((await stack.api('POST', `/test-runs/${id}/cancel`)).status).toBe(200);
    const late = await stack.callback(callbackPaths.done('test_run', id), done, auth);
    expect(late.body).toEqual({ status: 'cancelled', applied: false });
    expect((await stack.api('GET', `/test-runs/${id}`)).body.status).toBe('cancelled');
  });
});
