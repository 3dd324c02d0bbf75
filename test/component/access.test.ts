// Who may do what, on the REST API in-process with the real Postgres, S3 server and a real OpenID
// Provider (oidc-provider) issuing real tokens: valid, expired, for another audience, from another
// issuer, `alg: none`, HS256 signed with the issuer's public key, a callback token, revoked and
// unknown API tokens; users acting on others' jobs, a viewer cancelling, namespaces by group,
// tokens by role, limits with Retry-After, and one audit line per state-changing request.
import { Writable } from 'node:stream';
import { createPublicKey } from 'node:crypto';
import { pino } from 'pino';
import { SignJWT, UnsecuredJWT, decodeJwt } from 'jose';
import { createCallbackApp } from '../../src/callback/app.ts';
import { TokenVerifier } from '../../src/callback/token-verifier.ts';
import { callbackPaths } from '../../src/contract/index.ts';
import { createControllerApp } from '../../src/controller/api/app.ts';
import { JobEventHub } from '../../src/db/job-events.ts';
import { OidcVerifier } from '../../src/controller/auth/oidc.ts';
import { TokenIssuer } from '../../src/controller/token-issuer.ts';
import { buildColorClassifier } from '../../src/samples/color-classifier.ts';
import { buildColorDataset } from '../../src/samples/color-dataset.ts';
import {
  FakeTier,
  quietLog,
  serve,
  testAccess,
  testAdmission,
  testDatabase,
  testPrefix,
  testStorage,
  tokenKeyPair,
  type Served,
  type TestDatabase,
} from '../support/in-process.ts';
import { KINFER_AUDIENCE, startOidcProvider, type TestOidc } from '../support/oidc-provider.ts';

let db: TestDatabase;
let oidc: TestOidc;
let otherIssuer: TestOidc;
let api: Served;
let prefix: string;
let access: Awaited<ReturnType<typeof testAccess>>;
let hub: JobEventHub | undefined;
const auditLines: Array<Record<string, unknown>> = [];

const USERS = {
  alice: { groups: ['kinfer-users'] },
  bob: { groups: ['kinfer-users'] },
  vera: { groups: ['kinfer-viewers', 'team-a'] },
  carol: { groups: ['kinfer-users', 'team-a'] },
  root: { groups: ['kinfer-admins'] },
  nobody: { groups: ['marketing'] },
  brief: { groups: ['kinfer-users'], ttlSeconds: 1 },
};

beforeAll(async () => {
  db = await testDatabase();
  oidc = await startOidcProvider(USERS);
  otherIssuer = await startOidcProvider({ alice: { groups: ['kinfer-admins'] } });
  prefix = testPrefix();
  const storage = testStorage();
  await storage.write(`${prefix}/models/colors.onnx`, buildColorClassifier().model);
  for (const f of await buildColorDataset({ perClass: 1 })) await storage.write(`${prefix}/data/${f.path}`, f.bytes);
  access = await testAccess(db.ds, {
    oidc: {
      verifier: new OidcVerifier({ issuer: oidc.issuer, audience: KINFER_AUDIENCE, userClaim: 'sub', groupsClaim: 'groups', algorithms: ['RS256', 'ES256'] }),
      groups: { admin: ['kinfer-admins'], user: ['kinfer-users'], viewer: ['kinfer-viewers'], namespaces: { 'team-a': 'team-a' } },
    },
  });
  const log = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        const line = JSON.parse(chunk.toString()) as Record<string, unknown>;
        if (line.audit) auditLines.push(line);
        done();
      },
    }),
  );
  api = await serve(
    createControllerApp({
      store: db.store,
      admission: testAdmission(storage),
      log,
      ready: async () => undefined,
      tier: new FakeTier(),
      ...access,
      events: (hub = new JobEventHub(db.url, quietLog())),
      artifacts: { storage, rootUri: `${prefix}/artifacts` },
    }),
  );
}, 60_000);

afterAll(async () => {
  await api?.close();
  await hub?.stop();
  await oidc?.stop();
  await otherIssuer?.stop();
  await db?.stop();
});

const as = (token: string) => ({ authorization: `Bearer ${token}` });
const valid = () => ({ checkpoint_path: `${prefix}/models/colors.onnx`, dataset_path: `${prefix}/data`, task_type: 'image_classification' });
const jobOf = (owner: string | null, namespace: string | null = null) =>
  db.store.createTestRun({
    checkpoint_path: `${prefix}/models/colors.onnx`,
    dataset_path: `${prefix}/data`,
    dataset_split: 'test',
    task_type: 'image_classification',
    name: null,
    training_job_id: null,
    enable_xai: false,
    xai_method: null,
    xai_config: null,
    created_by: owner,
    namespace,
  });

describe('authentication: every /api/v1 route needs a valid token', () => {
  it('refuses what is not a valid token for this API with 401 and says why; health stays open', async () => {
    const alice = await oidc.token('alice');
    const { n, e } = ((await (await fetch(`${oidc.issuer}/jwks`)).json()) as { keys: Array<{ n: string; e: string }> }).keys[0]!;
    const publicPem = createPublicKey({ key: { kty: 'RSA', n, e }, format: 'jwk' })
      .export({ type: 'spki', format: 'pem' })
      .toString();
    const claims = decodeJwt(alice);
    const now = Math.floor(Date.now() / 1000);
    const forged = await new SignJWT({ ...claims, groups: ['kinfer-admins'] }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(publicPem));
    const unsigned = new UnsecuredJWT({ ...claims, exp: now + 600 }).encode();
    const brief = await oidc.token('brief');
    const callbackToken = new TokenIssuer(tokenKeyPair().privateKey, 600).issue('test_run', (await jobOf('alice')).id);
    await new Promise((r) => setTimeout(r, 2_100));
    const cases: Array<[string, Record<string, string>, RegExp]> = [
      ['no token', {}, /^missing bearer token/],
      ['a token for another audience', as(await oidc.token('alice', { resource: 'https://other.test/api' })), /^token refused: unexpected "aud" claim value/],
      // Signed by a key the issuer does not publish: refused at the signature, before its "iss" is read.
      ['a token from another issuer', as(await otherIssuer.token('alice')), /^token refused: signature verification failed$/],
      ['an expired token', as(brief), /^token expired$/],
      ['alg: none', as(unsigned), /^token refused: /],
      ['HS256 signed with the public key', as(forged), /^token refused: /],
      ['a callback token', as(callbackToken), /^token refused: /],
      ['an unknown API token', as('kinfer_0000000000000000000000000000000000000000000'), /^unknown API token$/],
    ];
    for (const [what, headers, message] of cases) {
      const res = await api.call('GET', '/api/v1/test-runs', undefined, headers);
      expect([what, res.status, res.body.error, res.headers.get('www-authenticate')]).toEqual([what, 401, 'unauthorized', 'Bearer realm="kinfer"']);
      expect([what, res.body.message]).toEqual([what, expect.stringMatching(message)]);
    }
    expect((await api.call('GET', '/api/v1/test-runs', undefined, as(alice))).status).toBe(200);
    const outsider = await api.call('GET', '/api/v1/test-runs', undefined, as(await oidc.token('nobody')));
    expect([outsider.status, outsider.body.message]).toEqual([403, 'nobody is in none of the groups kinfer admits']);
    expect((await api.call('GET', '/healthz')).status).toBe(200);
    expect((await api.call('GET', '/readyz')).status).toBe(200);
  }, 30_000);

  it('keeps callback tokens and API tokens apart: an API token is refused by the callback service', async () => {
    const callbacks = await serve(
      createCallbackApp({ store: db.store, verifier: new TokenVerifier(tokenKeyPair().publicKey), log: quietLog(), ready: async () => undefined }),
    );
    try {
      const job = await jobOf('admin');
      const res = await callbacks.call('POST', callbackPaths.progress(job.id), { processed_images: 1 }, as(access.adminToken));
      expect([res.status, res.body.error]).toEqual([401, 'unauthorized']);
      expect((await db.store.get('test_run', job.id))!.processed_images).toBe(0);
    } finally {
      await callbacks.close();
    }
  });
});

describe('ownership and roles', () => {
  it("a user sees and acts on its own jobs only: another's is not found, in lists, reads, images, exports and cancels", async () => {
    const [alice, bob] = [await oidc.token('alice'), await oidc.token('bob')];
    const created = await api.call('POST', '/api/v1/test-runs', valid(), as(alice));
    expect([created.status, created.body.created_by]).toEqual([201, 'alice']);
    const id = created.body.id as string;
    const paths = [`/api/v1/test-runs/${id}`, `/api/v1/test-runs/${id}/images`, `/api/v1/test-runs/${id}/export?format=json`];
    for (const path of paths) {
      expect([path, (await api.call('GET', path, undefined, as(alice))).status]).toEqual([path, 200]);
      const other = await api.call('GET', path, undefined, as(bob));
      expect([path, other.status, other.body.error]).toEqual([path, 404, 'not_found']);
    }
    expect((await api.call('POST', `/api/v1/test-runs/${id}/cancel`, undefined, as(bob))).status).toBe(404);
    // Nor through the routes a dashboard uses: events, artifacts, thumbnails, comparison, deletion.
    const mine = await api.call('POST', '/api/v1/test-runs', valid(), as(bob));
    for (const [method, path] of [
      ['GET', `/api/v1/test-runs/${id}/events`],
      ['GET', `/api/v1/test-runs/${id}/artifacts/results.json`],
      ['GET', `/api/v1/test-runs/${id}/images/0/thumbnail`],
      ['GET', `/api/v1/test-runs/compare?ids=${mine.body.id},${id}`],
      ['DELETE', `/api/v1/test-runs/${id}`],
    ] as const) {
      const other = await api.call(method, path, undefined, as(bob));
      expect([path, other.status, other.body.message]).toEqual([path, 404, `test run ${id} not found`]);
    }
    const bobsList = await api.call('GET', '/api/v1/test-runs?limit=1000', undefined, as(bob));
    expect(bobsList.body.items.map((j: { id: string }) => j.id)).not.toContain(id);
    expect(bobsList.body.items.every((j: { created_by: string }) => j.created_by === 'bob')).toBe(true);
    const alicesList = await api.call('GET', '/api/v1/test-runs?limit=1000', undefined, as(alice));
    expect(alicesList.body.items.map((j: { id: string }) => j.id)).toContain(id);
    const adminList = await api.call('GET', '/api/v1/test-runs?limit=1000', undefined, as(await oidc.token('root')));
    expect(adminList.body.total_count).toBeGreaterThan(alicesList.body.total_count);
    expect((await api.call('POST', `/api/v1/test-runs/${id}/cancel`, undefined, as(alice))).body.status).toBe('cancelled');
  });

  it('a viewer reads and may not submit or cancel; kubectl jobs show to the groups mapped to their namespace', async () => {
    const teamJob = await jobOf(null, 'team-a');
    const hidden = await jobOf(null, 'team-b');
    const [vera, carol] = [await oidc.token('vera'), await oidc.token('carol')];
    expect((await api.call('GET', `/api/v1/test-runs/${teamJob.id}`, undefined, as(vera))).status).toBe(200);
    expect((await api.call('GET', `/api/v1/test-runs/${hidden.id}`, undefined, as(vera))).status).toBe(404);
    const cancel = await api.call('POST', `/api/v1/test-runs/${teamJob.id}/cancel`, undefined, as(vera));
    expect([cancel.status, cancel.body.message]).toEqual([403, 'vera is a viewer; cancelling a job needs the user role']);
    const submit = await api.call('POST', '/api/v1/test-runs', valid(), as(vera));
    expect([submit.status, submit.body.message]).toEqual([403, 'vera is a viewer; submitting a job needs the user role']);
    expect((await api.call('POST', `/api/v1/test-runs/${teamJob.id}/cancel`, undefined, as(carol))).body.status).toBe('cancelled');
  });
});

describe('API tokens', () => {
  it('are created with a role no higher than their maker, shown once, listed by owner, and refused once revoked', async () => {
    const alice = await oidc.token('alice');
    const made = await api.call('POST', '/api/v1/tokens', { name: 'ci', role: 'user' }, as(alice));
    expect(made.status).toBe(201);
    expect(made.body).toMatchObject({ owner: 'alice', role: 'user', status: 'active', token: expect.stringMatching(/^kinfer_[\w-]{43}$/) });
    const secret = made.body.token as string;
    expect((await api.call('POST', '/api/v1/test-runs', valid(), as(secret))).body.created_by).toBe('alice');
    const higher = await api.call('POST', '/api/v1/tokens', { name: 'x', role: 'admin' }, as(alice));
    expect([higher.status, higher.body.message]).toEqual([403, 'a user cannot create a token with the admin role']);
    const forOther = await api.call('POST', '/api/v1/tokens', { name: 'x', owner: 'bob' }, as(alice));
    expect(forOther.status).toBe(403);
    const listed = await api.call('GET', '/api/v1/tokens', undefined, as(alice));
    expect(listed.body.items.map((t: { owner: string }) => t.owner)).toEqual(['alice']);
    expect(JSON.stringify(listed.body)).not.toContain(secret);
    expect((await api.call('POST', `/api/v1/tokens/${made.body.id}/revoke`, undefined, as(await oidc.token('bob')))).status).toBe(404);
    expect((await api.call('POST', `/api/v1/tokens/${made.body.id}/revoke`, undefined, as(alice))).body.status).toBe('revoked');
    const after = await api.call('GET', '/api/v1/test-runs', undefined, as(secret));
    expect([after.status, after.body.message]).toEqual([401, 'API token revoked']);
  });
});

describe('limits and audit', () => {
  it('answers 429 with Retry-After past the submission rate and the active-job quota', async () => {
    const limited = await testAccess(db.ds, { limits: { perMinute: 2, maxActiveJobs: 3 } });
    const app = await serve(
      createControllerApp({
        store: db.store,
        admission: testAdmission(testStorage()),
        log: quietLog(),
        ready: async () => undefined,
        tier: new FakeTier(),
        ...limited,
      }),
    );
    try {
      const user = (await limited.tokens.create({ name: 't', owner: 'dave', role: 'user', expiresAt: null })).secret;
      const replies = [];
      for (let i = 0; i < 3; i++) replies.push(await app.call('POST', '/api/v1/test-runs', valid(), as(user)));
      expect(replies.map((r) => r.status)).toEqual([201, 201, 429]);
      expect([replies[2]!.body.error, Number(replies[2]!.headers.get('retry-after'))]).toEqual(['rate_limited', expect.any(Number)]);
      expect(Number(replies[2]!.headers.get('retry-after'))).toBeGreaterThan(0);
      const busy = (await limited.tokens.create({ name: 't', owner: 'erin', role: 'user', expiresAt: null })).secret;
      for (let i = 0; i < 3; i++) await jobOf('erin');
      const quota = await app.call('POST', '/api/v1/test-runs', valid(), as(busy));
      expect([quota.status, quota.body.error, quota.headers.get('retry-after')]).toEqual([429, 'quota_exceeded', '30']);
    } finally {
      await app.close();
    }
  });

  it('writes one audit line per state-changing request: who, what, which job, the outcome', async () => {
    auditLines.length = 0;
    const alice = await oidc.token('alice');
    const created = await api.call('POST', '/api/v1/test-runs', valid(), as(alice));
    await api.call('POST', `/api/v1/test-runs/${created.body.id}/cancel`, undefined, as(await oidc.token('bob')));
    await api.call('GET', '/api/v1/test-runs', undefined, as(alice));
    expect(auditLines.map(({ who, role, via, action, job_id, status }) => ({ who, role, via, action, job_id, status }))).toEqual([
      { who: 'alice', role: 'user', via: 'oidc', action: 'POST /api/v1/test-runs', job_id: created.body.id, status: 201 },
      { who: 'bob', role: 'user', via: 'oidc', action: 'POST /api/v1/test-runs/:id/cancel', job_id: undefined, status: 404 },
    ]);
  });
});
