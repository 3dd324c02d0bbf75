// Controller entrypoint: REST API + the tier that runs jobs (KINFER_EXECUTOR: subprocess or
// kubernetes). Applies database migrations at start.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { parseBucketCredentials, RUNNER_NODE_FLAGS } from '../contract/index.ts';
import { openDatabase } from '../db/data-source.ts';
import { JobStore } from '../db/job-store.ts';
import { pemFromEnv } from '../http/keys.ts';
import { serviceLogger } from '../http/logger.ts';
import { guardProcess, listen, readyToServe, stopWithParent } from '../http/plumbing.ts';
import { StorageClient } from '../storage/object-store.ts';
import { Admission } from './admission/admission.ts';
import { ModelInspector } from './admission/model-inspector.ts';
import { createControllerApp } from './api/app.ts';
import { startSubprocessTier } from './subprocess/subprocess-tier.ts';
import { startKubernetesTier } from './kubernetes/kubernetes-tier.ts';
import { parseRunnerPodDefaults } from './kubernetes/runner-pod-defaults.ts';
import { runnerEnvFor, type RunnerSettings } from './job-mapping.ts';
import { TokenIssuer } from './token-issuer.ts';
import { TokenStore } from '../db/token-store.ts';
import { ModelStore } from '../db/model-store.ts';
import { JobEventHub } from '../db/job-events.ts';
import { DASHBOARD_DIR } from './dashboard.ts';
import { capabilitiesOf } from './api/capabilities.ts';
import { ensureAdminToken } from './auth/bootstrap.ts';
import { SubmitLimiter } from './auth/limits.ts';
import { authenticatorOf, csv, dashboardSignIn, OIDC_ENV } from './auth/settings.ts';
import { StoragePolicy } from './auth/storage-policy.ts';

const defaultRunner = JSON.stringify([process.execPath, ...RUNNER_NODE_FLAGS, fileURLToPath(new URL('../runner/main.ts', import.meta.url))]);
const jsonArgv = (raw: string) => z.array(z.string()).min(1).parse(JSON.parse(raw));

const Config = z.object({
  DATABASE_URL: z.string().min(1),
  /** How long start-up waits for the database before it gives up with a clear message. */
  KINFER_DATABASE_WAIT_SECONDS: z.coerce.number().min(0).default(60),
  KINFER_HOME: z.string().default('.kinfer'),
  KINFER_API_HOST: z.string().default('127.0.0.1'),
  KINFER_API_PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  KINFER_CALLBACK_URL: z.url().default('http://127.0.0.1:8081'),
  KINFER_ARTIFACTS_URI: z.string().min(1),
  /** The predictor, for /api/v1/predict through the controller's origin (the dashboard's). */
  KINFER_PREDICTOR_URL: z.url().optional(),
  /** Serve the dashboard at / (true unless 'false'). */
  KINFER_DASHBOARD: z.enum(['true', 'false']).default('true'),
  KINFER_TOKEN_TTL_SECONDS: z.coerce.number().int().positive().default(86_400),
  KINFER_EXECUTOR: z.enum(['subprocess', 'kubernetes']).default('subprocess'),
  KINFER_RUNNER_BATCH_SIZE: z.coerce.number().int().positive().optional(),
  KINFER_RUNNER_INTRA_OP_THREADS: z.coerce.number().int().positive().optional(),
  /** The runners' SESSIONS: `auto`, or how many sessions a batch is split over. */
  KINFER_RUNNER_SESSIONS: z
    .string()
    .regex(/^(auto|[1-9]|[1-5][0-9]|6[0-4])$/, 'is auto or a number from 1 to 64')
    .optional(),
  // subprocess tier
  /** JSON array argv of the runner. */
  KINFER_RUNNER_COMMAND: z.string().default(defaultRunner).transform(jsonArgv),
  KINFER_MAX_CONCURRENT_RUNNERS: z.coerce.number().int().positive().default(2),
  /**
   * A runner that sends nothing for this long is stopped and its job failed. Longer than the
   * runners' callback retry window (CALLBACK_RETRY_SECONDS, 600): a callback outage is ridden out.
   */
  KINFER_RUNNER_STALL_SECONDS: z.coerce.number().int().positive().default(900),
  /** The runners' heartbeat (HEARTBEAT_SECONDS). */
  KINFER_RUNNER_HEARTBEAT_SECONDS: z.coerce.number().int().positive().optional(),
  /** The most images one job may have: a larger job fails TOO_MANY_IMAGES before reading any. */
  KINFER_MAX_IMAGES_PER_JOB: z.coerce.number().int().positive().optional(),
  // kubernetes tier
  KUBECONFIG: z.string().optional(),
  KINFER_NAMESPACE: z.string().default('default'),
  /** The one kinfer image (the chart's image.repository:tag). */
  KINFER_RUNNER_IMAGE: z.string().default('ghcr.io/kinfer/kinfer:0.1.0'),
  /** JSON array: arguments to the image's entrypoint that start the runner. */
  KINFER_RUNNER_POD_ARGS: z.string().default('["runner"]').transform(jsonArgv),
  /** JSON: resources, nodeSelector, tolerations, gpu placement... (runner-pod-defaults.ts). */
  KINFER_RUNNER_POD_DEFAULTS: z
    .string()
    .optional()
    .transform((raw) => parseRunnerPodDefaults(raw)),
  KINFER_POD_START_TIMEOUT_SECONDS: z.coerce.number().positive().default(300),
  KINFER_JOB_TTL_SECONDS: z.coerce.number().int().min(0).default(86_400),
  KINFER_LEADER_ELECTION: z.enum(['true', 'false']).default('true'),
  KINFER_LEASE_DURATION_SECONDS: z.coerce.number().int().min(2).default(15),
  // About 4 writes per InferenceJob (finalizer, Secret, Job, status): 300/s lets a burst of 60
  // InferenceJobs/s through; lower it to spare a shared API server.
  KINFER_KUBE_QPS: z.coerce.number().positive().default(300),
  KINFER_KUBE_BURST: z.coerce.number().int().min(1).default(600),
  KINFER_KUBE_EVENT_QPS: z.coerce.number().positive().default(5),
  KINFER_KUBE_EVENT_BURST: z.coerce.number().int().min(1).default(25),
  KINFER_IDENTITY: z.string().default(`${hostname()}-${process.pid}`),
  /** Submit-time checks in object storage (existence, the model's header, the dataset's classes). */
  KINFER_ADMISSION_TIMEOUT_SECONDS: z.coerce.number().positive().default(30),
  S3_ENDPOINT: z.url().optional(),
  AWS_REGION: z.string().default('us-east-1'),
  AWS_ACCESS_KEY_ID: z.string().optional(),
  AWS_SECRET_ACCESS_KEY: z.string().optional(),
  /** JSON {bucket: {access_key_id, secret_access_key, endpoint?, region?}}: buckets with their own credentials (or `_FILE`). */
  KINFER_S3_BUCKET_CREDENTIALS: z.string().optional(),
  KINFER_S3_BUCKET_CREDENTIALS_FILE: z.string().optional(),
  // Access (README "Access")
  /** The first admin token (the chart's Secret), or a file that holds it, made on first start (kinfer serve). */
  KINFER_ADMIN_TOKEN: z.string().optional(),
  KINFER_ADMIN_TOKEN_FILE: z.string().optional(),
  ...OIDC_ENV,
  /** Comma-separated URI prefixes jobs may read (`s3://` = any bucket); unset: any S3 location, no local files. */
  KINFER_ALLOWED_URIS: csv.optional(),
  KINFER_MAX_ACTIVE_JOBS_PER_USER: z.coerce.number().int().positive().default(20),
  KINFER_SUBMITS_PER_MINUTE: z.coerce.number().int().positive().default(60),
  KINFER_MAX_BODY_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(2 * 2 ** 20),
  KINFER_METRICS_PUBLIC: z.enum(['true', 'false']).default('true'),
  /** An OpenAI-compatible chat endpoint for natural-language explanations (optional). */
  KINFER_XAI_LLM_BASE_URL: z.url().optional(),
  KINFER_XAI_LLM_MODEL: z.string().optional(),
  KINFER_XAI_LLM_API_KEY: z.string().optional(),
});

const log = serviceLogger('controller');
guardProcess(log);
stopWithParent(log);
try {
  const config = Config.parse(process.env);
  // Configuration first: a bad key is refused before anything waits on the database.
  const tokens = new TokenIssuer(pemFromEnv(process.env, 'KINFER_TOKEN_PRIVATE_KEY'), config.KINFER_TOKEN_TTL_SECONDS);
  const ds = await openDatabase(config.DATABASE_URL, { migrate: true, poolSize: 10, waitMs: config.KINFER_DATABASE_WAIT_SECONDS * 1000 });
  const store = new JobStore(ds);
  const buckets = parseBucketCredentials(
    config.KINFER_S3_BUCKET_CREDENTIALS ??
      (config.KINFER_S3_BUCKET_CREDENTIALS_FILE ? readFileSync(config.KINFER_S3_BUCKET_CREDENTIALS_FILE, 'utf8') : undefined),
    'KINFER_S3_BUCKET_CREDENTIALS',
  );
  const s3 = {
    endpoint: config.S3_ENDPOINT,
    region: config.AWS_REGION,
    accessKeyId: config.AWS_ACCESS_KEY_ID,
    secretAccessKey: config.AWS_SECRET_ACCESS_KEY,
    buckets,
  };
  const runner: RunnerSettings = {
    callbackUrl: config.KINFER_CALLBACK_URL,
    artifactsUri: config.KINFER_ARTIFACTS_URI,
    s3Endpoint: s3.endpoint,
    awsRegion: s3.region,
    awsAccessKeyId: s3.accessKeyId,
    awsSecretAccessKey: s3.secretAccessKey,
    batchSize: config.KINFER_RUNNER_BATCH_SIZE,
    intraOpThreads: config.KINFER_RUNNER_INTRA_OP_THREADS,
    sessions: config.KINFER_RUNNER_SESSIONS,
    heartbeatSeconds: config.KINFER_RUNNER_HEARTBEAT_SECONDS,
    maxImagesPerJob: config.KINFER_MAX_IMAGES_PER_JOB,
    bucketCredentials: buckets,
    xaiLlm: config.KINFER_XAI_LLM_BASE_URL
      ? { baseUrl: config.KINFER_XAI_LLM_BASE_URL, model: config.KINFER_XAI_LLM_MODEL, apiKey: config.KINFER_XAI_LLM_API_KEY }
      : undefined,
  };
  const storage = new StorageClient(s3);
  const policy = new StoragePolicy(config.KINFER_ALLOWED_URIS ?? ['s3://']);
  const registry = new ModelStore(ds);
  const admission = new Admission({
    storage,
    models: new ModelInspector(storage),
    timeoutMs: config.KINFER_ADMISSION_TIMEOUT_SECONDS * 1000,
    policy,
    registry,
  });
  const apiTokens = new TokenStore(ds);
  await ensureAdminToken(apiTokens, { token: config.KINFER_ADMIN_TOKEN, file: config.KINFER_ADMIN_TOKEN_FILE });
  const auth = authenticatorOf(config, apiTokens);
  const tier =
    config.KINFER_EXECUTOR === 'kubernetes'
      ? await startKubernetesTier({
          store,
          admission,
          databaseUrl: config.DATABASE_URL,
          tokens,
          runner,
          pod: {
            image: config.KINFER_RUNNER_IMAGE,
            args: config.KINFER_RUNNER_POD_ARGS,
            defaultTtlSecondsAfterFinished: config.KINFER_JOB_TTL_SECONDS,
            defaults: config.KINFER_RUNNER_POD_DEFAULTS,
          },
          kubeconfig: config.KUBECONFIG,
          kubeClient: { qps: config.KINFER_KUBE_QPS, burst: config.KINFER_KUBE_BURST },
          events: { qps: config.KINFER_KUBE_EVENT_QPS, burst: config.KINFER_KUBE_EVENT_BURST },
          namespace: config.KINFER_NAMESPACE,
          identity: config.KINFER_IDENTITY,
          podStartTimeoutMs: config.KINFER_POD_START_TIMEOUT_SECONDS * 1000,
          runnerStallMs: config.KINFER_RUNNER_STALL_SECONDS * 1000,
          leaderElection: { enabled: config.KINFER_LEADER_ELECTION === 'true', leaseDurationSeconds: config.KINFER_LEASE_DURATION_SECONDS },
          log,
        })
      : await startSubprocessTier({
          store,
          log,
          command: config.KINFER_RUNNER_COMMAND,
          logDir: join(resolve(config.KINFER_HOME), 'logs'),
          maxConcurrent: config.KINFER_MAX_CONCURRENT_RUNNERS,
          stallSeconds: config.KINFER_RUNNER_STALL_SECONDS,
          callbackReadyUrl: new URL('/readyz', config.KINFER_CALLBACK_URL).href,
          envFor: (kind, job) => runnerEnvFor(kind, job, runner, tokens.issue(kind, job.id)),
        });
  const events = new JobEventHub(config.DATABASE_URL, log);
  const app = createControllerApp({
    predictorUrl: config.KINFER_PREDICTOR_URL,
    signIn: dashboardSignIn(config),
    dashboardDir: config.KINFER_DASHBOARD === 'false' ? undefined : DASHBOARD_DIR,
    events,
    artifacts: { storage, rootUri: config.KINFER_ARTIFACTS_URI },
    store,
    admission,
    log,
    ready: async () => {
      await ds.query('SELECT 1');
      await tier.ready();
    },
    tier,
    auth,
    tokens: apiTokens,
    limiter: new SubmitLimiter({ perMinute: config.KINFER_SUBMITS_PER_MINUTE, maxActiveJobs: config.KINFER_MAX_ACTIVE_JOBS_PER_USER }),
    maxBodyBytes: config.KINFER_MAX_BODY_BYTES,
    metricsPublic: config.KINFER_METRICS_PUBLIC === 'true',
    models: registry,
    capabilities: capabilitiesOf({
      executor: config.KINFER_EXECUTOR,
      oidc: Boolean(config.KINFER_OIDC_ISSUER),
      allowedUris: config.KINFER_ALLOWED_URIS ?? ['s3://'],
      maxBodyBytes: config.KINFER_MAX_BODY_BYTES,
      submitsPerMinute: config.KINFER_SUBMITS_PER_MINUTE,
      maxActiveJobsPerUser: config.KINFER_MAX_ACTIVE_JOBS_PER_USER,
    }),
  });
  const server = await listen(app, config.KINFER_API_HOST, config.KINFER_API_PORT);
  await readyToServe(
    server.port,
    async () => {
      await tier.stop();
      // Live event streams end first (their clients reconnect elsewhere), or the server would wait for them.
      await events.stop();
      await server.close();
      await ds.destroy();
    },
    log,
  );
  log.info(
    {
      host: config.KINFER_API_HOST,
      port: server.port,
      executor: config.KINFER_EXECUTOR,
      callback_url: config.KINFER_CALLBACK_URL,
      artifacts: config.KINFER_ARTIFACTS_URI,
    },
    'controller listening',
  );
} catch (err) {
  log.fatal({ err }, 'controller failed to start');
  process.exit(1);
}
