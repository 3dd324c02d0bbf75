// A runner stopped by SIGTERM while the callback service is gone: it tries to report the job
// failed for TERMINATION_REPORT_SECONDS, then exits 143 anyway, as a container must within its
// grace period, instead of retrying its final report for CALLBACK_DONE_RETRY_SECONDS (30 min).
// Real components: the runner process, the callback service's app, Postgres.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
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

let db: TestDatabase;

beforeAll(async () => {
  db = await testDatabase();
});

afterAll(async () => {
  await db?.stop();
});

it('reports within TERMINATION_REPORT_SECONDS after SIGTERM, or exits 143 without the report', async () => {
  const dir = mkdtempSync(join(process.env.KINFER_TEST_DIR!, 'termination-'));
  writeFileSync(join(dir, 'colors.onnx'), buildColorClassifier().model);
  for (const f of await buildColorDataset({ perClass: 150, seed: 5 })) {
    mkdirSync(dirname(join(dir, 'data', f.path)), { recursive: true });
    writeFileSync(join(dir, 'data', f.path), f.bytes);
  }
  const { privateKey, publicKey } = tokenKeyPair();
  const server: Server = createCallbackApp({ store: db.store, verifier: new TokenVerifier(publicKey), log: quietLog(), ready: async () => undefined }).listen(
    0,
    '127.0.0.1',
  );
  await new Promise((r) => server.once('listening', r));
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
  const runner = spawn(process.execPath, [...RUNNER_NODE_FLAGS, fileURLToPath(new URL('../../src/runner/main.ts', import.meta.url))], {
    env: { PATH: process.env.PATH, ...env, TERMINATION_REPORT_SECONDS: '2', PROGRESS_INTERVAL_MS: '100' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  runner.stderr.on('data', (c) => (stderr += c));
  const exited = new Promise<number | null>((resolve) => runner.on('close', resolve));
  try {
    // Running: it has reported images.
    for (let i = 0; ; i++) {
      if (((await db.store.get('test_run', job.id))?.processed_images ?? 0) > 0) break;
      if (i > 600) throw new Error(`the runner never reported progress: ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    // The callback service goes away for good, then the runner is told to stop.
    server.close();
    server.closeAllConnections();
    const stoppedAt = performance.now();
    runner.kill('SIGTERM');
    expect(await exited).toBe(143);
    // 2 s of retrying, plus the last attempt and the exit; far below the 30 minutes of a done.
    expect(performance.now() - stoppedAt).toBeLessThan(15_000);
    expect(stderr).toMatch(
      /could not report completion \(failed: runner received SIGTERM before finishing .*did not accept \/api\/v1\/test-runs\/[0-9a-f-]+\/done for 2 s/,
    );
    const row = await db.store.get('test_run', job.id);
    expect(row?.status).toBe('running'); // nothing reached the service: the controller fails it from the exit
  } finally {
    runner.kill('SIGKILL');
    server.close();
  }
}, 60_000);
