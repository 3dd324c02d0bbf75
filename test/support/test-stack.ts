// One suite's kinfer: controller + callback service as real processes (the same launcher as
// `kinfer serve`), on the shared Postgres (own database) and S3 server (own artifacts prefix).
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pLimit from 'p-limit';
import pg from 'pg';
import { startStack, type Stack } from '../../src/cli/stack.ts';
import { isTerminal } from '../../src/contract/index.ts';
import { ObjectStore } from '../../src/runner/io/object-store.ts';

export interface HttpReply<T = any> {
  status: number;
  body: T;
}

export interface TestStack extends Stack {
  suiteId: string;
  bucket: string;
  /** s3://bucket/suiteId/... */
  s3Prefix: string;
  store: ObjectStore;
  db: pg.Client;
  privateKey: string;
  publicKey: string;
  api<T = any>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<HttpReply<T>>;
  /** The admin token's Authorization header, for calls made without `api`. */
  bearer: Record<string, string>;
  callback<T = any>(path: string, body: unknown, headers?: Record<string, string>): Promise<HttpReply<T>>;
  /** Polls GET until the job reaches a terminal status (or the predicate holds). */
  waitFor(kind: 'test-runs' | 'inference-jobs', id: string, until?: (job: any) => boolean, timeoutMs?: number): Promise<any>;
}

/** A job's status with its reason, so that an unexpected failure shows why in the test's output. */
export function outcome(job: { status: string; error_message?: string | null }): { status: string; error_message: string | null } {
  return { status: job.status, error_message: job.error_message ?? null };
}

export async function createDatabase(adminUrl: string, name: string): Promise<string> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/**
 * `relayDatabase`: turns the suite's database URL into the one the services get (a TCP relay the
 * suite can cut); the suite's own client keeps the direct URL.
 */
export async function startTestStack(
  extraEnv: Record<string, string> = {},
  opts: { relayDatabase?: (url: string) => Promise<string>; apiPort?: number } = {},
): Promise<TestStack> {
  const suiteId = `s${randomUUID().slice(0, 8)}`;
  const bucket = process.env.KINFER_TEST_BUCKET!;
  const databaseUrl = await createDatabase(process.env.DATABASE_URL!, `kinfer_${suiteId}`);
  const home = mkdtempSync(join(process.env.KINFER_TEST_DIR!, `${suiteId}-`));
  const stack = await startStack({
    home,
    /** The system picks both ports; the services announce them (KINFER_PORT_FILE): no race with other suites. */
    apiPort: opts.apiPort ?? 0,
    callbackPort: 0,
    pgPort: 0,
    serviceLogs: 'files',
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      // The test folder's (global-setup.ts): what the services leave there goes with it.
      TMPDIR: process.env.TMPDIR,
      // bin/with-node's: the services and their runners start on compiled code where it is cached.
      NODE_COMPILE_CACHE: process.env.NODE_COMPILE_CACHE,
      DATABASE_URL: opts.relayDatabase ? await opts.relayDatabase(databaseUrl) : databaseUrl,
      KINFER_ARTIFACTS_URI: `s3://${bucket}/${suiteId}/artifacts`,
      S3_ENDPOINT: process.env.S3_ENDPOINT,
      AWS_REGION: process.env.AWS_REGION,
      AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID,
      AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY,
      LOG_LEVEL: 'debug',
      ...extraEnv,
    },
  });
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  const store = new ObjectStore({
    endpoint: process.env.S3_ENDPOINT,
    region: process.env.AWS_REGION!,
    accessKeyId: process.env.AWS_ACCESS_KEY_ID,
    secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY,
  });
  const http = async (url: string, method: string, body: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(url, {
      method,
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  const bearer = { authorization: `Bearer ${stack.adminToken}` };
  const api = (method: 'GET' | 'POST', path: string, body?: unknown) => http(`${stack.apiUrl}${path}`, method, body, bearer);
  return {
    ...stack,
    suiteId,
    bucket,
    s3Prefix: `s3://${bucket}/${suiteId}`,
    store,
    db,
    privateKey: readFileSync(join(home, 'keys', 'token-signing.key.pem'), 'utf8'),
    publicKey: readFileSync(join(home, 'keys', 'token-signing.pub.pem'), 'utf8'),
    api,
    bearer,
    callback: (path, body, headers) => http(`${stack.callbackUrl}${path}`, 'POST', body, headers),
    async waitFor(kind, id, until = (job) => isTerminal(job.status), timeoutMs = 45_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        // A controller restarting (a fault under test) refuses connections for a moment.
        const { status, body } = await api('GET', `/${kind}/${id}`).catch(() => ({ status: 0, body: undefined }));
        if (status === 200 && until(body)) return body;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${kind}/${id}; last state: ${JSON.stringify(body)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop() {
      await db.end();
      await stack.stop();
    },
  };
}

/** Uploads generated files under a storage prefix, 16 at a time. */
export async function upload(store: ObjectStore, prefix: string, files: ReadonlyArray<{ path: string; bytes: Uint8Array }>): Promise<void> {
  const limit = pLimit(16);
  await Promise.all(files.map((f) => limit(() => store.write(`${prefix}/${f.path}`, Buffer.from(f.bytes)))));
}
