// The middle test tier: services' parts in the test's own process, on the real Postgres and S3
// server the suites share (a database and prefix of their own), with stand-ins only for what a
// part hands work to (a FAKE tier, a FAKE executor), named as such.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import { pino } from 'pino';
import type { DataSource } from 'typeorm';
import type { JobKind } from '../../src/contract/index.ts';
import { Admission, type ModelRegistry } from '../../src/controller/admission/admission.ts';
import { ModelInspector } from '../../src/controller/admission/model-inspector.ts';
import type { Tier } from '../../src/controller/tier.ts';
import { openDatabase } from '../../src/db/data-source.ts';
import { JobStore, type Job } from '../../src/db/job-store.ts';
import { TokenStore } from '../../src/db/token-store.ts';
import { ModelStore } from '../../src/db/model-store.ts';
import { capabilitiesOf } from '../../src/controller/api/capabilities.ts';
import { Authenticator, type AuthenticatorOptions } from '../../src/controller/auth/authenticator.ts';
import { SubmitLimiter, type SubmitLimits } from '../../src/controller/auth/limits.ts';
import { StoragePolicy } from '../../src/controller/auth/storage-policy.ts';
import { StorageClient } from '../../src/storage/object-store.ts';
import { createDatabase } from './test-stack.ts';

export const quietLog = () => pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

export interface TestDatabase {
  url: string;
  ds: DataSource;
  store: JobStore;
  stop(): Promise<void>;
}

/** A database of its own on the shared Postgres, migrated. */
export async function testDatabase(): Promise<TestDatabase> {
  const url = await createDatabase(process.env.DATABASE_URL!, `kinfer_c${randomUUID().slice(0, 8)}`);
  const ds = await openDatabase(url, { migrate: true, poolSize: 4 });
  return { url, ds, store: new JobStore(ds), stop: () => ds.destroy() };
}

/** A pending test run as the REST door would store it (for suites that drive what follows). */
export async function newTestRun(
  store: JobStore,
  extra: { backoff_limit?: number; parallelism?: number; checkpoint_path?: string; dataset_path?: string } = {},
): Promise<string> {
  const run = await store.createTestRun({
    checkpoint_path: 's3://models/m.onnx',
    dataset_path: 's3://datasets/d',
    ...extra,
    dataset_split: 'test',
    task_type: 'image_classification',
    name: null,
    training_job_id: null,
    enable_xai: false,
    xai_method: null,
    xai_config: null,
  });
  return run.id;
}

/** A fresh ES256 key pair for callback tokens (PEM). */
export function tokenKeyPair(): { privateKey: string; publicKey: string } {
  return generateKeyPairSync('ec', {
    namedCurve: 'prime256v1',
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
}

/** The shared S3 server (versitygw), as the services see it. */
export function testStorage(): StorageClient {
  return new StorageClient({
    endpoint: process.env.S3_ENDPOINT,
    region: process.env.AWS_REGION!,
    accessKeyId: process.env.AWS_ACCESS_KEY_ID,
    secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY,
  });
}

/** The S3 prefix of one suite in the shared bucket. */
export function testPrefix(): string {
  return `s3://${process.env.KINFER_TEST_BUCKET}/c${randomUUID().slice(0, 8)}`;
}

/** Where test jobs may read: the shared bucket and the suites' folder (KINFER_ALLOWED_URIS). */
export function testStoragePolicy(): StoragePolicy {
  return new StoragePolicy([`s3://${process.env.KINFER_TEST_BUCKET}`, process.env.KINFER_TEST_DIR!]);
}

export function testAdmission(storage: StorageClient, timeoutMs = 10_000, registry?: ModelRegistry): Admission {
  return new Admission({ storage, models: new ModelInspector(storage), timeoutMs, policy: testStoragePolicy(), registry });
}

/** FAKE tier: records what the REST API hands it; `fail` makes the hand-over fail. */
export class FakeTier implements Tier {
  readonly created: Array<{ kind: JobKind; id: string }> = [];
  readonly cancelled: Array<{ kind: JobKind; id: string }> = [];
  readonly deleted: Array<{ kind: JobKind; id: string }> = [];
  fail: Error | undefined;

  async onCreated(kind: JobKind, job: Job): Promise<void> {
    if (this.fail) throw this.fail;
    this.created.push({ kind, id: job.id });
  }

  async onCancelled(kind: JobKind, job: Job): Promise<void> {
    this.cancelled.push({ kind, id: job.id });
  }

  async onDeleted(kind: JobKind, job: Job): Promise<void> {
    this.deleted.push({ kind, id: job.id });
  }

  async ready(): Promise<void> {}

  async stop(): Promise<void> {}
}

export interface Served {
  url: string;
  close(): Promise<void>;
  call<T = any>(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: T; headers: Headers }>;
}

/** The REST API's parts besides the store and admission (access, registry, capabilities) on a test database, with an admin token (`bearer`: its header). */
export async function testAccess(
  ds: DataSource,
  opts: { oidc?: AuthenticatorOptions['oidc']; limits?: SubmitLimits } = {},
): Promise<{
  auth: Authenticator;
  tokens: TokenStore;
  limiter: SubmitLimiter;
  models: ModelStore;
  capabilities: () => Promise<Record<string, unknown>>;
  adminToken: string;
  bearer: Record<string, string>;
}> {
  const tokens = new TokenStore(ds);
  const { secret } = await tokens.create({ name: 'test admin', owner: 'admin', role: 'admin', expiresAt: null });
  return {
    auth: new Authenticator({ tokens, oidc: opts.oidc }),
    tokens,
    limiter: new SubmitLimiter(opts.limits ?? { perMinute: 1_000_000, maxActiveJobs: 1_000_000 }),
    models: new ModelStore(ds),
    capabilities: capabilitiesOf({
      executor: 'fake',
      oidc: opts.oidc !== undefined,
      allowedUris: [`s3://${process.env.KINFER_TEST_BUCKET}`, process.env.KINFER_TEST_DIR!],
      maxBodyBytes: 2 * 2 ** 20,
      submitsPerMinute: opts.limits?.perMinute ?? 1_000_000,
      maxActiveJobsPerUser: opts.limits?.maxActiveJobs ?? 1_000_000,
    }),
    adminToken: secret,
    bearer: { authorization: `Bearer ${secret}` },
  };
}

/** Listens on a free loopback port and answers JSON calls (with `defaultHeaders`, e.g. a token). */
export async function serve(app: Express, defaultHeaders: Record<string, string> = {}): Promise<Served> {
  const server = await new Promise<import('node:http').Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    close: () => new Promise((resolve) => server.close(() => resolve())),
    async call(method, path, body, headers = {}) {
      const res = await fetch(`${url}${path}`, {
        method,
        headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...defaultHeaders, ...headers },
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
    },
  };
}
