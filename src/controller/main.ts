// Controller entrypoint: REST API + reconciler + subprocess executor. Applies migrations at start.
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { openDatabase } from '../db/data-source.ts';
import { JobStore } from '../db/job-store.ts';
import { pemFromEnv } from '../http/keys.ts';
import { serviceLogger } from '../http/logger.ts';
import { listen, stopOnSignals } from '../http/plumbing.ts';
import { StorageReader } from '../storage/object-store.ts';
import { createControllerApp } from './app.ts';
import { SubprocessExecutor } from './executors/subprocess.ts';
import { Reconciler } from './reconciler.ts';
import { runnerEnvFor } from './runner-env.ts';
import { TokenIssuer } from './token-issuer.ts';

const defaultRunner = JSON.stringify([process.execPath, fileURLToPath(new URL('../runner/main.ts', import.meta.url))]);

const Config = z.object({
  DATABASE_URL: z.string().min(1),
  KINFER_HOME: z.string().default('.kinfer'),
  KINFER_API_HOST: z.string().default('127.0.0.1'),
  KINFER_API_PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  KINFER_CALLBACK_URL: z.url().default('http://127.0.0.1:8081'),
  KINFER_ARTIFACTS_URI: z.string().min(1),
  KINFER_TOKEN_TTL_SECONDS: z.coerce.number().int().positive().default(86_400),
  /** JSON array argv of the runner. */
  KINFER_RUNNER_COMMAND: z.string().default(defaultRunner).transform((raw) => z.array(z.string()).min(1).parse(JSON.parse(raw))),
  KINFER_MAX_CONCURRENT_RUNNERS: z.coerce.number().int().positive().default(2),
  KINFER_RUNNER_BATCH_SIZE: z.coerce.number().int().positive().optional(),
  KINFER_RUNNER_INTRA_OP_THREADS: z.coerce.number().int().positive().optional(),
  S3_ENDPOINT: z.url().optional(),
  AWS_REGION: z.string().default('us-east-1'),
  AWS_ACCESS_KEY_ID: z.string().optional(),
  AWS_SECRET_ACCESS_KEY: z.string().optional(),
});

const log = serviceLogger('controller');
try {
  const config = Config.parse(process.env);
  const ds = await openDatabase(config.DATABASE_URL, { migrate: true, poolSize: 10 });
  const store = new JobStore(ds);
  const s3 = { endpoint: config.S3_ENDPOINT, region: config.AWS_REGION, accessKeyId: config.AWS_ACCESS_KEY_ID, secretAccessKey: config.AWS_SECRET_ACCESS_KEY };
  const tokens = new TokenIssuer(pemFromEnv(process.env, 'KINFER_TOKEN_PRIVATE_KEY'), config.KINFER_TOKEN_TTL_SECONDS);
  const executor = new SubprocessExecutor({ command: config.KINFER_RUNNER_COMMAND, logDir: join(resolve(config.KINFER_HOME), 'logs'), stopGraceMs: 10_000 });
  const reconciler = new Reconciler({
    store,
    executor,
    log,
    maxConcurrent: config.KINFER_MAX_CONCURRENT_RUNNERS,
    intervalMs: 2000,
    envFor: (kind, job) =>
      runnerEnvFor(kind, job, {
        callbackUrl: config.KINFER_CALLBACK_URL,
        artifactsUri: config.KINFER_ARTIFACTS_URI,
        s3Endpoint: s3.endpoint,
        awsRegion: s3.region,
        awsAccessKeyId: s3.accessKeyId,
        awsSecretAccessKey: s3.secretAccessKey,
        batchSize: config.KINFER_RUNNER_BATCH_SIZE,
        intraOpThreads: config.KINFER_RUNNER_INTRA_OP_THREADS,
      }, tokens),
  });
  const app = createControllerApp({
    store,
    storage: new StorageReader(s3),
    log,
    ready: async () => {
      await ds.query('SELECT 1');
    },
    onCreated: () => reconciler.kick(),
    onCancelled: async (_kind, job) => executor.stop(job.id, job.executor_ref),
  });
  await reconciler.start();
  const server = await listen(app, config.KINFER_API_HOST, config.KINFER_API_PORT);
  log.info({ host: config.KINFER_API_HOST, port: server.port, callback_url: config.KINFER_CALLBACK_URL, artifacts: config.KINFER_ARTIFACTS_URI }, 'controller listening');
  stopOnSignals(async () => {
    reconciler.stop();
    await server.close();
    await ds.destroy();
  });
} catch (err) {
  log.fatal({ err }, 'controller failed to start');
  process.exit(1);
}
