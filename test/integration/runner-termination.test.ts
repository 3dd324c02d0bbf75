// A runner stopped by SIGTERM while the callback service is gone: the results batch it was
// retrying gives up at once, it tries to report the job failed for TERMINATION_REPORT_SECONDS,
// then exits 143 anyway, as a container must within its grace period, instead of retrying the
// batch for CALLBACK_RETRY_SECONDS (10 min) and its final report for CALLBACK_DONE_RETRY_SECONDS
// (30 min). It leaves nothing in its home or temporary folder: no ONNX Runtime telemetry. Real
// components: the runner process, the callback service's app, Postgres.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createCallbackApp } from '../../src/callback/app.ts';
import { TokenVerifier } from '../../src/callback/token-verifier.ts';
import { RUNNER_NODE_FLAGS } from '../../src/contract/index.ts';
import { runnerEnvFor } from '../../src/controller/job-mapping.ts';
import { TokenIssuer } from '../../src/controller/token-issuer.ts';
import { buildColorClassifier } from '../../src/samples/color-classifier.ts';
import { buildColorDataset } from '../../src/samples/color-dataset.ts';
import { newTestRun, quietLog, testDatabase, tokenKeyPair, type TestDatabase } from '../support/in-process.ts';
import { ownHomeAndTmp } from '../support/processes.ts';

let db: TestDatabase;

beforeAll(async () => {
  db = await testDatabase();
});

afterAll(async () => {
  await db?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

it('gives up the callback it was retrying on SIGTERM, reports within TERMINATION_REPORT_SECONDS, or exits 143 without the report; leaves its home and temporary folder empty', async () => {
  const dir = mkdtempSync(join(process.env.KINFER_TEST_DIR!, 'termination-'));
  writeFileSync(join(dir, 'colors.onnx'), buildColorClassifier().model);
  for (const f of await buildColorDataset({ perClass: 8, seed: 5 })) {
    mkdirSync(dirname(join(dir, 'data', f.path)), { recursive: true });
    writeFileSync(join(dir, 'data', f.path), f.bytes);
  }
  const { privateKey, publicKey } = tokenKeyPair();
  const app = createCallbackApp({ store: db.store, verifier: new TokenVerifier(publicKey), log: quietLog(), ready: async () => undefined });
  // The callback service goes away for good once it has stored the first results batch: every
  // connection after that is cut. The runner is then mid-run, whatever its speed: its pipeline
  // waits on the next batch (4 images; the job has 48).
  let gone = false;
  const server = createServer((req, res) => {
    if (gone) return req.socket.destroy();
    if (req.url?.endsWith('/image-results')) res.once('finish', () => (gone = true));
    app(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const job = (await db.store.get('test_run', await newTestRun(db.store, { checkpoint_path: join(dir, 'colors.onnx'), dataset_path: join(dir, 'data') })))!;
  const env = runnerEnvFor(
    'test_run',
    job,
    {
      callbackUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      artifactsUri: pathToFileURL(join(dir, 'artifacts')).href,
      awsRegion: 'us-east-1',
      batchSize: 4,
    },
    new TokenIssuer(privateKey, 600).issue('test_run', job.id),
  );
  const folders = ownHomeAndTmp(dir);
  const runner = spawn(process.execPath, [...RUNNER_NODE_FLAGS, fileURLToPath(new URL('../../src/runner/main.ts', import.meta.url))], {
    env: { PATH: process.env.PATH, ...folders.env, ...env, TERMINATION_REPORT_SECONDS: '2', RESULTS_BATCH_SIZE: '4' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let logs = '';
  runner.stderr.on('data', (c) => (stderr += c));
  runner.stdout.on('data', (c) => (logs += c));
  const exited = new Promise<number | null>((resolve) => runner.on('close', resolve));
  try {
    // Retrying a results batch (or progress) against the service that is gone.
    for (let i = 0; !/callback service unavailable; retrying/.test(logs); i++) {
      if (i > 600) throw new Error(`the runner never retried a callback: ${stderr}`);
      await sleep(50);
    }
    expect(gone).toBe(true);
    await sleep(500);
    const stoppedAt = performance.now();
    runner.kill('SIGTERM');
    // 2 s of retrying the report, plus its last attempt and the exit: not the 10 minutes of the batch.
    expect(await Promise.race([exited, sleep(10_000).then(() => 'still running 10 s after SIGTERM')])).toBe(143);
    expect(performance.now() - stoppedAt).toBeLessThan(10_000);
    expect(stderr).toMatch(
      /could not report completion \(failed: runner received SIGTERM before finishing .*did not accept \/api\/v1\/test-runs\/[0-9a-f-]+\/done for 2 s/,
    );
    const row = await db.store.get('test_run', job.id);
    // The first batch reached the service, and nothing after it: the controller fails the run from the exit.
    expect(row?.status).toBe('running');
    expect(row?.processed_images).toBeLessThan(48);
    // Nothing of ONNX Runtime's telemetry either (a device id under ~/.cache/Microsoft,
    // mat-debug-<pid>.log files), though its session ran.
    expect(folders.left()).toEqual({ home: [], tmp: [] });
  } finally {
    runner.kill('SIGKILL');
    server.close();
    server.closeAllConnections();
  }
}, 60_000);
