// The callback service's app in-process on the real Postgres: a runner's report moves its job
// forward once, its error code is kept beside the message, and every refusal is from the catalog.
import { randomUUID } from 'node:crypto';
import { createCallbackApp } from '../../src/callback/app.ts';
import { TokenVerifier } from '../../src/callback/token-verifier.ts';
import { callbackPaths } from '../../src/contract/index.ts';
import { TokenIssuer } from '../../src/controller/token-issuer.ts';
import { listenJobEvents } from '../../src/db/job-events.ts';
import { HTTP_ERRORS } from '../../src/http/errors.ts';
import { newTestRun, quietLog, serve, tokenKeyPair, testDatabase, type Served, type TestDatabase } from '../support/in-process.ts';

let db: TestDatabase;
let app: Served;
let tokens: TokenIssuer;
let issuerKey: string;

beforeAll(async () => {
  db = await testDatabase();
  const { privateKey, publicKey } = tokenKeyPair();
  issuerKey = privateKey;
  tokens = new TokenIssuer(privateKey, 600);
  app = await serve(createCallbackApp({ store: db.store, verifier: new TokenVerifier(publicKey), log: quietLog(), ready: async () => undefined }));
});

afterAll(async () => {
  await app?.close();
  await db?.stop();
});

const newRun = () => newTestRun(db.store);
const auth = (id: string) => ({ authorization: `Bearer ${tokens.issue('test_run', id)}` });
const counts = { processed_images: 4, total_images: 10, failed_images: 0, results_path: null, timings: null };

describe('callback service in-process', () => {
  it("keeps a runner's error code with its message, and a second done changes nothing", async () => {
    const id = await newRun();
    expect((await app.call('POST', callbackPaths.progress(id), { processed_images: 4, total_images: 10 }, auth(id))).body).toEqual({
      status: 'running',
      applied: true,
    });
    const done = {
      status: 'failed',
      ...counts,
      error_message: "the model's task is object_detection but the job asks for image_classification",
      error_code: 'MODEL_METADATA_INVALID',
    };
    expect((await app.call('POST', callbackPaths.done('test_run', id), done, auth(id))).body).toEqual({ status: 'failed', applied: true });
    expect(await db.store.get('test_run', id)).toMatchObject({ status: 'failed', error_code: 'MODEL_METADATA_INVALID', processed_images: 4 });
    const again = await app.call('POST', callbackPaths.done('test_run', id), { status: 'completed', ...counts, processed_images: 10, metrics: null }, auth(id));
    expect([again.status, again.body]).toEqual([200, { status: 'failed', applied: false }]);
  });

  it('a token verified once is still refused after it expires, and a token altered by one character is refused though the original was accepted', async () => {
    const id = await newRun();
    const foreignIssuer = new TokenIssuer(tokenKeyPair().privateKey, 600); // another key: refused
    const short = new TokenIssuer(issuerKey, 1).issue('test_run', id);
    const ok = await app.call('POST', callbackPaths.progress(id), { processed_images: 1, total_images: 10 }, { authorization: `Bearer ${short}` });
    expect(ok.status).toBe(200);
    // One character inside the signature changed (the last one may only carry padding bits): a token that was never verified.
    const at = short.length - 10;
    const forged = `${short.slice(0, at)}${short[at] === 'A' ? 'B' : 'A'}${short.slice(at + 1)}`;
    const altered = await app.call('POST', callbackPaths.progress(id), { processed_images: 2 }, { authorization: `Bearer ${forged}` });
    expect([altered.status, altered.body.message]).toEqual([401, expect.stringMatching(/^invalid token: /)]);
    const foreign = await app.call(
      'POST',
      callbackPaths.progress(id),
      { processed_images: 2 },
      { authorization: `Bearer ${foreignIssuer.issue('test_run', id)}` },
    );
    expect([foreign.status, foreign.body.message]).toEqual([401, 'invalid token: invalid signature']);
    await new Promise((r) => setTimeout(r, 2_100)); // past its exp (whole seconds)
    const late = await app.call('POST', callbackPaths.progress(id), { processed_images: 3 }, { authorization: `Bearer ${short}` });
    expect([late.status, late.body.message]).toEqual([401, 'token expired']);
    expect((await db.store.get('test_run', id))!.processed_images).toBe(1);
  });

  it('tells listeners of a change they would show (the status, a whole percent), not of every report', async () => {
    const id = await newRun();
    const heard: Array<[string, number]> = [];
    const listener = listenJobEvents(db.url, (e) => e.id === id && heard.push([e.status, e.processed_images ?? -1]), quietLog());
    try {
      await new Promise((r) => setTimeout(r, 300)); // LISTEN is in place
      for (let n = 1; n <= 400; n++) {
        const res = await app.call('POST', callbackPaths.progress(id), { processed_images: n, total_images: 400 }, auth(id));
        expect(res.status).toBe(200);
      }
      const expected: Array<[string, number]> = [['running', 1]]; // pending -> running
      for (let n = 4; n <= 400; n += 4) expected.push(['running', n]); // 1%, 2%, ... 100%
      for (let i = 0; i < 50 && heard.length < expected.length; i++) await new Promise((r) => setTimeout(r, 100));
      expect(heard).toEqual(expected);
    } finally {
      await listener.stop();
    }
  }, 60_000);

  it('records RUNNER_ERROR for a failure without a code (an older runner)', async () => {
    const id = await newRun();
    await app.call('POST', callbackPaths.done('test_run', id), { status: 'failed', ...counts, error_message: 'boom' }, auth(id));
    expect(await db.store.get('test_run', id)).toMatchObject({ status: 'failed', error_code: 'RUNNER_ERROR', error_message: 'boom' });
  });

  it('refuses with codes from the catalog: no token, another job, a payload off the contract, a code that is not one', async () => {
    const id = await newRun();
    const other = await newRun();
    const replies = [
      await app.call('POST', callbackPaths.progress(id), { processed_images: 1 }),
      await app.call('POST', callbackPaths.progress(id), { processed_images: 1 }, auth(other)),
      await app.call('POST', callbackPaths.progress(id), { processed_images: -1 }, auth(id)),
      await app.call('POST', callbackPaths.done('test_run', id), { status: 'failed', ...counts, error_message: 'x', error_code: 'not a code' }, auth(id)),
    ];
    expect(replies.map((r) => [r.status, r.body.error])).toEqual([
      [401, 'unauthorized'],
      [403, 'forbidden'],
      [422, 'invalid_payload'],
      [422, 'invalid_payload'],
    ]);
    expect(replies[3]!.body.fields).toEqual([{ field: 'error_code', message: 'must be an UPPER_SNAKE_CASE code' }]);
    for (const r of replies) expect(HTTP_ERRORS[r.body.error as keyof typeof HTTP_ERRORS].status).toBe(r.status);
    expect((await app.call('POST', callbackPaths.progress(randomUUID()), { processed_images: 1 }, auth(id))).status).toBe(403);
  });
});
