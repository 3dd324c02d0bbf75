// Artifact downloads on the REST API in-process, with the real Postgres and S3 server: a whole
// download is the object byte for byte, and one its client walks away from closes the object's
// storage stream at once. It used to wait for a `drain` that never comes: one S3 connection held
// for ever per abandoned download, until the client's pool ran dry.
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { jobArtifactsUri } from '../../src/contract/index.ts';
import { createControllerApp } from '../../src/controller/api/app.ts';
import type { StorageClient } from '../../src/storage/object-store.ts';
import { eventually } from '../support/local-cluster.ts';
import { wrapMethod } from '../support/wrap-method.ts';
import {
  FakeTier,
  newTestRun,
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
let access: Awaited<ReturnType<typeof testAccess>>;
let prefix: string;
let storage: StorageClient;
/** Storage streams the API opened, and those closed since. */
const streams = { opened: 0, closed: 0 };

beforeAll(async () => {
  db = await testDatabase();
  prefix = testPrefix();
  storage = testStorage();
  access = await testAccess(db.ds);
  // The real client, its streams counted as they open and close.
  const counted = wrapMethod(
    storage,
    'stream',
    (stream) =>
      async function* (...args: Parameters<StorageClient['stream']>) {
        streams.opened++;
        try {
          yield* stream(...args);
        } finally {
          streams.closed++;
        }
      },
  );
  api = await serve(
    createControllerApp({
      store: db.store,
      admission: testAdmission(storage),
      log: quietLog(),
      ready: async () => undefined,
      tier: new FakeTier(),
      ...access,
      artifacts: { storage: counted, rootUri: `${prefix}/artifacts` },
    }),
    access.bearer,
  );
}, 60_000);

afterAll(async () => {
  await api?.close();
  await db?.stop();
});

/** A 24 MiB artifact of a new job: more than the sockets between client and server buffer. */
async function bigArtifact(): Promise<{ path: string; sha256: string; size: number }> {
  const id = await newTestRun(db.store);
  const bytes = Buffer.alloc(24 * 2 ** 20);
  for (let i = 0; i < bytes.length; i += 4096) bytes.writeUInt32LE(i, i);
  await storage.write(`${jobArtifactsUri(`${prefix}/artifacts`, 'test_run', id)}/predictions.jsonl`, bytes);
  return { path: `/api/v1/test-runs/${id}/artifacts/predictions.jsonl`, sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length };
}

describe('artifact downloads', () => {
  it('a whole download is the object, byte for byte', async () => {
    const artifact = await bigArtifact();
    const res = await fetch(`${api.url}${artifact.path}`, { headers: access.bearer });
    const body = Buffer.from(await res.arrayBuffer());
    expect([res.status, res.headers.get('content-length'), body.length]).toEqual([200, String(artifact.size), artifact.size]);
    expect(createHash('sha256').update(body).digest('hex')).toBe(artifact.sha256);
  });

  it('a download its client walks away from closes its storage stream', async () => {
    const artifact = await bigArtifact();
    const before = { ...streams };
    // The client takes the headers, reads nothing, and hangs up a moment later.
    await new Promise<void>((resolve, reject) => {
      const req = request(`${api.url}${artifact.path}`, { headers: access.bearer }, (res) => {
        expect(res.statusCode).toBe(200);
        res.pause();
        setTimeout(() => {
          req.destroy();
          resolve();
        }, 500);
      });
      req.on('error', (err) => ((err as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(err)));
      req.end();
    });
    await eventually('the storage stream closed', async () => (streams.closed === before.closed + 1 ? true : undefined), 10_000);
    expect(streams.opened).toBe(before.opened + 1);
  });
});
