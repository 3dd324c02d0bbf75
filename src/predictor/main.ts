// Predictor service entrypoint: online predictions with warm models (README "Online predictions").
// Needs DATABASE_URL (API tokens, the model registry); reads models and images from storage.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { parseBucketCredentials } from '../contract/index.ts';
import { authenticatorOf, csv, OIDC_ENV } from '../controller/auth/settings.ts';
import { StoragePolicy } from '../controller/auth/storage-policy.ts';
import { CachedTokenLookup } from '../controller/auth/token-cache.ts';
import { openDatabase } from '../db/data-source.ts';
import { MODEL_RELOADS_CHANNEL, ModelStore } from '../db/model-store.ts';
import { listenChannels } from '../db/notifications.ts';
import { TOKEN_CHANGES_CHANNEL, TokenStore } from '../db/token-store.ts';
import { serviceLogger } from '../http/logger.ts';
import { guardProcess, listen, readyToServe, stopWithParent } from '../http/plumbing.ts';
import { ObjectStore } from '../runner/io/object-store.ts';
import { createPredictorApp } from './app.ts';
import { Predictor } from './predictor.ts';
import { MemoryCache, RedisCache } from './result-cache.ts';

const Config = z.object({
  DATABASE_URL: z.string().min(1),
  KINFER_DATABASE_WAIT_SECONDS: z.coerce.number().min(0).default(60),
  KINFER_PREDICTOR_HOST: z.string().default('127.0.0.1'),
  KINFER_PREDICTOR_PORT: z.coerce.number().int().min(0).max(65535).default(8082),
  /** Warm models kept in memory. */
  KINFER_PREDICTOR_MAX_MODELS: z.coerce.number().int().positive().default(4),
  KINFER_PREDICT_MAX_IMAGE_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(20 * 2 ** 20),
  /** Predictions kept for repeated requests (same image bytes, model and parameters); 0 keeps none. */
  KINFER_PREDICT_CACHE_ENTRIES: z.coerce.number().int().min(0).default(1000),
  KINFER_PREDICTOR_INTRA_OP_THREADS: z.coerce.number().int().positive().optional(),
  /** ONNX Runtime's threads spin between runs: more throughput under load, some idle CPU burnt. */
  KINFER_PREDICTOR_ORT_SPINNING: z.stringbool().default(true),
  /** Dynamic batching defaults (a registered version may set its own: `serving`). */
  KINFER_PREDICT_MAX_BATCH_SIZE: z.coerce.number().int().min(1).max(256).default(8),
  KINFER_PREDICT_MAX_QUEUE_DELAY_MS: z.coerce.number().min(0).max(1000).default(5),
  KINFER_PREDICT_MAX_BATCH_IMAGES: z.coerce.number().int().min(1).max(1024).default(32),
  /** Images a replica holds at once; past it a request gets 503 predictor_overloaded with Retry-After (0: no limit). */
  KINFER_PREDICT_MAX_IN_FLIGHT: z.coerce.number().int().min(0).max(1_000_000).default(256),
  /** How long a stage change or a traffic split takes to be seen without a reload. */
  KINFER_PREDICT_REGISTRY_TTL_MS: z.coerce.number().int().min(0).default(2000),
  /** Redis for the result cache, shared by every replica (in-process when unset). */
  REDIS_URL: z.string().min(1).optional(),
  KINFER_PREDICT_CACHE_TTL_SECONDS: z.coerce.number().int().positive().default(3600),
  /** SIGTERM: requests in flight get this long to finish. */
  KINFER_PREDICTOR_GRACE_SECONDS: z.coerce.number().min(0).default(25),
  /**
   * API tokens are read from the database once per this many seconds, not per request; a
   * revocation reaches the predictor at once all the same (Postgres NOTIFY). 0: read per request.
   */
  KINFER_PREDICTOR_TOKEN_CACHE_SECONDS: z.coerce.number().min(0).default(30),
  KINFER_ALLOWED_URIS: csv.optional(),
  ...OIDC_ENV,
  S3_ENDPOINT: z.url().optional(),
  AWS_REGION: z.string().default('us-east-1'),
  AWS_ACCESS_KEY_ID: z.string().optional(),
  AWS_SECRET_ACCESS_KEY: z.string().optional(),
  KINFER_S3_BUCKET_CREDENTIALS: z.string().optional(),
});

const log = serviceLogger('predictor');
guardProcess(log);
stopWithParent(log);
try {
  const config = Config.parse(process.env);
  const ds = await openDatabase(config.DATABASE_URL, { migrate: false, poolSize: 5, waitMs: config.KINFER_DATABASE_WAIT_SECONDS * 1000 });
  // Each batch's scratch folder is made and removed under here; the folder itself goes at SIGTERM,
  // whether the requests in flight finish or the grace period ends them.
  const workDir = mkdtempSync(join(tmpdir(), 'kinfer-predictor-'));
  const removeWorkDir = () => rmSync(workDir, { recursive: true, force: true });
  const predictor = new Predictor({
    store: new ObjectStore({
      endpoint: config.S3_ENDPOINT,
      region: config.AWS_REGION,
      accessKeyId: config.AWS_ACCESS_KEY_ID,
      secretAccessKey: config.AWS_SECRET_ACCESS_KEY,
      buckets: parseBucketCredentials(config.KINFER_S3_BUCKET_CREDENTIALS, 'KINFER_S3_BUCKET_CREDENTIALS'),
    }),
    workDir,
    maxModels: config.KINFER_PREDICTOR_MAX_MODELS,
    intraOpThreads: config.KINFER_PREDICTOR_INTRA_OP_THREADS,
    allowSpinning: config.KINFER_PREDICTOR_ORT_SPINNING,
    maxBatchSize: config.KINFER_PREDICT_MAX_BATCH_SIZE,
    maxQueueDelayMs: config.KINFER_PREDICT_MAX_QUEUE_DELAY_MS,
    log,
  });
  const cache = config.REDIS_URL
    ? await RedisCache.connect(config.REDIS_URL, config.KINFER_PREDICT_CACHE_TTL_SECONDS, (err) =>
        log.warn({ err }, 'redis unavailable: predictions are not cached'),
      )
    : new MemoryCache(config.KINFER_PREDICT_CACHE_ENTRIES);
  const tokens = new CachedTokenLookup(new TokenStore(ds), { ttlMs: config.KINFER_PREDICTOR_TOKEN_CACHE_SECONDS * 1000, maxEntries: 10_000 });
  const replicaId = randomUUID();
  const { app, reload, drain } = createPredictorApp({
    predictor,
    auth: authenticatorOf(config, tokens),
    models: new ModelStore(ds),
    policy: new StoragePolicy(config.KINFER_ALLOWED_URIS ?? ['s3://']),
    log,
    ready: async () => {
      await ds.query('SELECT 1');
    },
    maxImageBytes: config.KINFER_PREDICT_MAX_IMAGE_BYTES,
    maxBatchImages: config.KINFER_PREDICT_MAX_BATCH_IMAGES,
    maxInFlight: config.KINFER_PREDICT_MAX_IN_FLIGHT,
    registryTtlMs: config.KINFER_PREDICT_REGISTRY_TTL_MS,
    cache,
    replicaId,
  });
  /** Loads a name again beside its old session, then swaps; says how it went. */
  const reloadLogged = (name: string, message: string, fields: Record<string, unknown> = {}) =>
    reload(name).then(
      (reloaded) => log.info({ model: name, versions: reloaded.length, ...fields }, message),
      (err: unknown) => log.error({ err, model: name }, 'reload failed; the old version keeps serving'),
    );
  /** Every warm registered model loaded again. */
  const reloadWarm = (why: string) => {
    for (const name of predictor.warmNames()) void reloadLogged(name, `reloaded ${why}`);
  };
  // One LISTEN connection for both: revocations (cached API tokens forgotten) and reloads asked of
  // another replica. While it is down, tokens are not cached (they could not be revoked); once it
  // listens again, a reload announced meanwhile was never heard: every warm model again (at
  // start-up none is warm: nothing to do).
  const notices = listenChannels(
    config.DATABASE_URL,
    {
      [TOKEN_CHANGES_CHANNEL]: (payload) => {
        const id = (payload as { id?: unknown } | null)?.id;
        if (typeof id === 'string') tokens.forget(id);
      },
      [MODEL_RELOADS_CHANNEL]: (payload) => {
        const notice = payload as { name?: unknown; origin?: unknown };
        if (typeof notice.name !== 'string' || notice.origin === replicaId) return;
        void reloadLogged(notice.name, 'reloaded on notice', { origin: notice.origin });
      },
    },
    log,
    {
      onListening: () => {
        tokens.listening = true;
        log.info({ ttl_seconds: config.KINFER_PREDICTOR_TOKEN_CACHE_SECONDS }, 'revocations are heard: API tokens are cached');
        reloadWarm('after reload notices could not be heard');
      },
      onLost: () => (tokens.listening = false),
    },
  );
  const server = await listen(app, config.KINFER_PREDICTOR_HOST, config.KINFER_PREDICTOR_PORT);
  // SIGHUP: every warm registered model loaded again beside the old session, then swapped.
  process.on('SIGHUP', () => reloadWarm('on SIGHUP'));
  // SIGTERM: not ready at once, no new connections, requests in flight finish (within the grace period).
  await readyToServe(
    server.port,
    async () => {
      drain();
      log.info({ grace_seconds: config.KINFER_PREDICTOR_GRACE_SECONDS }, 'draining');
      const grace = setTimeout(() => {
        log.warn('grace period over; stopping with requests in flight');
        removeWorkDir();
        process.exit(0);
      }, config.KINFER_PREDICTOR_GRACE_SECONDS * 1000);
      grace.unref();
      await server.close();
      await notices.stop();
      await predictor.close();
      removeWorkDir();
      await cache.close();
      await ds.destroy();
    },
    log,
  );
  log.info({ host: config.KINFER_PREDICTOR_HOST, port: server.port }, 'predictor listening');
} catch (err) {
  log.fatal({ err }, 'predictor failed to start');
  process.exit(1);
}
