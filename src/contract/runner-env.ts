// The runner's whole configuration, as environment variables. The executors build it with
// `toRunnerEnv`; the runner reads it with `parseRunnerEnv`. Seed names are kept; additions are
// documented on each field.
import { z } from 'zod';
import { InferenceType, InputConfig, TaskType } from './jobs.ts';
import { XaiImages, XaiMethod, XaiTarget } from './xai.ts';
import { parseStorageUri } from './storage-layout.ts';
import { parseBucketCredentials } from './storage-credentials.ts';
import { MAX_PARALLELISM } from './job-fields.ts';

const boolFromEnv = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => v === 'true' || v === '1' || v === 'yes');

const storageUri = z
  .string()
  .min(1)
  .superRefine((uri, ctx) => {
    try {
      parseStorageUri(uri);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
    }
  });

const positiveInt = z.coerce.number().int().positive();

export const RunnerEnv = z
  .object({
    /** Database id of the test run or inference job (UUID). */
    JOB_ID: z.uuid(),
    /** Correlates every log line and callback of one job across processes. */
    TRACE_ID: z.string().min(1).max(128),
    INFERENCE_TYPE: InferenceType,
    /** Base URL of the callback service, e.g. http://127.0.0.1:8081. */
    BACKEND_BASE_URL: z.url(),
    /** Bearer token minted by the controller for this one job. */
    CALLBACK_TOKEN: z.string().min(1),
    TASK_TYPE: TaskType,
    /** ONNX model: s3://, file:// or an absolute path. */
    CHECKPOINT_PATH: storageUri,
    DATASET_ID: z.string().optional(),
    /**
     * Labeled dataset root (test runs). Classification: `{DATASET_PATH}/{SPLIT}/{class_name}/*`;
     * objects: `{SPLIT}/annotations.json` (COCO) or `{SPLIT}/images` + `{SPLIT}/labels` (YOLO);
     * semantic segmentation: `{SPLIT}/images` + `{SPLIT}/masks` (PNG class ids).
     */
    DATASET_PATH: storageUri.optional(),
    SPLIT: z.string().min(1).default('test'),
    /** JSON InputConfig (inference jobs). */
    INPUT_CONFIG: z
      .string()
      .optional()
      .transform((raw, ctx) => {
        if (raw === undefined || raw === '') return undefined;
        let parsed: unknown;
        try {
          parsed = JSON.parse(raw);
        } catch {
          ctx.addIssue({ code: 'custom', message: 'is not valid JSON' });
          return z.NEVER;
        }
        const result = InputConfig.safeParse(parsed);
        if (!result.success) {
          ctx.addIssue({ code: 'custom', message: `must be {image_path} | {image_paths} | {dataset_path}` });
          return z.NEVER;
        }
        return result.data;
      }),
    /**
     * Added: `callback` when the input list is too long for the environment (Linux caps one
     * variable at 128 KiB): the runner then reads INPUT_CONFIG from the callback service.
     */
    INPUT_CONFIG_SOURCE: z.enum(['env', 'callback']).default('env'),
    COMPUTE_METRICS: boolFromEnv.optional(),
    ENABLE_XAI: boolFromEnv.default(false),
    XAI_METHOD: XaiMethod.optional(),
    XAI_TARGET_LAYER: z.string().optional(),
    XAI_NUM_SAMPLES: positiveInt.optional(),
    /** Added: which images to explain (all | incorrect | first:N); default incorrect for test runs, first:1000 otherwise. */
    XAI_IMAGES: XaiImages.optional(),
    /** Added: the class to explain, predicted (default) or true (test runs). */
    XAI_TARGET: XaiTarget.default('predicted'),
    /** Added: an OpenAI-compatible endpoint for natural-language explanations (optional). */
    XAI_LLM_BASE_URL: z.url().optional(),
    XAI_LLM_MODEL: z.string().optional(),
    XAI_LLM_API_KEY: z.string().optional(),
    /** S3-compatible endpoint (path-style addressing is used when set). */
    S3_ENDPOINT: z.url().optional(),
    AWS_ACCESS_KEY_ID: z.string().optional(),
    AWS_SECRET_ACCESS_KEY: z.string().optional(),
    AWS_REGION: z.string().default('us-east-1'),
    /** Added: JSON {bucket: {access_key_id, secret_access_key, endpoint?, region?}} for the buckets of this job that have their own. */
    S3_BUCKET_CREDENTIALS: z
      .string()
      .optional()
      .transform((raw, ctx) => {
        try {
          return parseBucketCredentials(raw, 'S3_BUCKET_CREDENTIALS');
        } catch (err) {
          ctx.addIssue({ code: 'custom', message: (err as Error).message.replace(/^S3_BUCKET_CREDENTIALS /, '') });
          return z.NEVER;
        }
      }),
    /** Artifacts bucket (seed name); used when ARTIFACTS_URI is not set. */
    BUCKET_NAME: z.string().optional(),
    /** Added: where artifacts go, `s3://bucket[/prefix]` or `file:///dir`. Overrides BUCKET_NAME. */
    ARTIFACTS_URI: storageUri.optional(),
    /** Added: images per batch (per `session.run`, or split over SESSIONS). */
    BATCH_SIZE: positiveInt.max(1024).default(16),
    /** Added: ONNX Runtime intra-op threads; default = CPUs available to this process. */
    INTRA_OP_THREADS: positiveInt.optional(),
    /**
     * Added: the ONNX Runtime sessions a CPU runner runs its batches on, INTRA_OP_THREADS shared
     * between them: each batch cut into contiguous parts run at once, or, for a model with a fixed
     * batch (Ultralytics exports batch 1) and batches of one image, whole on the least busy one.
     * The same outputs (each image is computed alone). `auto`: two where INTRA_OP_THREADS is even
     * and the model is from 1 to 32 MiB (each session holds a copy; a smaller one is not what
     * bounds a job), else one. One with explanations or a GPU provider.
     */
    SESSIONS: z.union([z.literal('auto'), positiveInt.max(64)]).default('auto'),
    /** Added: comma-separated execution providers in order of preference, e.g. `cuda,cpu`. */
    EXECUTION_PROVIDERS: z.string().default('cpu'),
    /** Added: images decoded ahead of inference, in parallel (sharp's decodes on the libuv pool; libjpeg-turbo's up to 1 MP on the main thread). */
    DECODE_CONCURRENCY: positiveInt.max(64).default(4),
    /**
     * Added: images read ahead (object storage GETs, file reads in flight), apart from their
     * decoding: a remote store's round trip, not the CPU, bounds what one read at a time gives.
     * Fewer where 256 MiB would not hold that many of the largest image read so far; never fewer
     * than DECODE_CONCURRENCY.
     */
    READ_CONCURRENCY: positiveInt.max(256).default(32),
    /**
     * Added: `auto` decodes upright YCbCr and grey JPEGs with libjpeg-turbo directly (a third of
     * libvips' CPU, the same pixels), and encodes pictures with it; everything else goes to sharp.
     * `sharp`: sharp decodes and encodes everything.
     */
    JPEG_DECODER: z.enum(['auto', 'sharp']).default('auto'),
    /**
     * Added: the nice value of the runner's own threads (decoding, reporting, drawing, garbage
     * collection) while ONNX Runtime's keep theirs, so that the pipeline runs in the session's gaps
     * instead of preempting its threads (Linux; 0: all threads as started).
     */
    PIPELINE_NICE: z.coerce.number().int().min(0).max(19).default(19),
    /** Added: a progress callback after this many images... */
    PROGRESS_EVERY_IMAGES: positiveInt.default(50),
    /** ...or after this many milliseconds, whichever comes first. */
    PROGRESS_INTERVAL_MS: positiveInt.default(2000),
    /** Added, classification: the classes ranked per image in `predictions` (default 5; the CLI asks for all). */
    TOP_K: positiveInt.max(100_000).default(5),
    /** Added: how long a callback is retried through an outage of the callback service (progress, results). */
    CALLBACK_RETRY_SECONDS: positiveInt.default(600),
    /** Added: the same for the final report, longer still: a lost `done` turns a finished job into a failed one. */
    CALLBACK_DONE_RETRY_SECONDS: positiveInt.default(1800),
    /**
     * Added: after SIGTERM or SIGINT, how long the final report (failed: terminated; or completed,
     * when the signal came as it was sent) is retried before the runner exits anyway: within
     * Kubernetes' default grace period (30 s), and a stopped local stack does not leave runners
     * retrying for CALLBACK_DONE_RETRY_SECONDS. Other callbacks give up at the signal. The
     * controller fails a run whose runner exited without a report, with the exit's reason.
     */
    TERMINATION_REPORT_SECONDS: positiveInt.default(20),
    /** Added: a progress callback at least this often while the job runs, so that the controller can tell a stopped runner. */
    HEARTBEAT_SECONDS: positiveInt.default(20),
    /** The most images one job may have (its listing is counted first); absent: no limit. */
    MAX_IMAGES: positiveInt.optional(),
    /** Added: per-image results sent per callback. */
    RESULTS_BATCH_SIZE: positiveInt.max(1000).default(100),
    /** Added, object tasks: minimum confidence; default Ultralytics' 0.001 for test runs, 0.25 for inference. */
    CONF_THRESHOLD: z.coerce.number().min(0).max(1).optional(),
    /** Added, object tasks: NMS IoU threshold (Ultralytics' YOLOv8/11 default 0.7; YOLOv5 used 0.45). */
    IOU_THRESHOLD: z.coerce.number().gt(0).max(1).default(0.7),
    /** Added, object tasks: at most this many objects per image. */
    MAX_DET: positiveInt.max(10_000).default(300),
    /** Added, semantic segmentation: the ground-truth value that is not scored. */
    IGNORE_INDEX: z.coerce.number().int().min(0).max(65535).default(255),
    /** Added: draw each image with its predictions under `visualizations/` (not for classification). */
    SAVE_VISUALIZATIONS: boolFromEnv.default(true),
    /**
     * Added: hand the session the decoded uint8 pixels and convert them (HWC -> CHW, /255, mean,
     * std) there rather than on the main thread: in the session's worker just before each run on
     * the CPU, in nodes put in front of the model on other providers; the same values bit for bit.
     * Not with explanations (they need the float input).
     */
    UINT8_INPUT: boolFromEnv.default(true),
    /** Added: shards of a sharded job (its `parallelism`); each runner takes one contiguous range of the image listing. */
    SHARD_COUNT: positiveInt.max(MAX_PARALLELISM).default(1),
    /** Added: this runner's shard, 0-based; default JOB_COMPLETION_INDEX (set by an Indexed batch/v1 Job), else 0. */
    SHARD_INDEX: z.coerce.number().int().min(0).optional(),
    /** Set by Kubernetes in each Pod of an Indexed Job. */
    JOB_COMPLETION_INDEX: z.coerce.number().int().min(0).optional(),
  })
  .transform(({ JOB_COMPLETION_INDEX, ...env }) => ({
    ...env,
    SHARD_INDEX: env.SHARD_INDEX ?? JOB_COMPLETION_INDEX ?? 0,
    ARTIFACTS_URI: env.ARTIFACTS_URI ?? `s3://${env.BUCKET_NAME}`,
    COMPUTE_METRICS: env.COMPUTE_METRICS ?? env.INFERENCE_TYPE === 'test_run',
  }));
export type RunnerEnv = z.output<typeof RunnerEnv>;

/**
 * Node's flags for a runner process (the subprocess tier's command, the image's entrypoint, the
 * benchmarks). A runner allocates fast (decoded images, result JSON) and V8 otherwise lets its heap
 * grow with the job's length (231 MiB peak at 1k images, 410 at 100k); a small young generation
 * and a slow heap growth keep it flat (bench:memory).
 *
 * With so little room above the live heap, V8 started incremental marking as soon as the room left
 * was under the young generation's capacity, that is always: a detection run made a full
 * mark-compact every 0.1 s (47 in a 256-image run with pictures), each promoting whatever young
 * objects were alive at the time, which brought the next one closer. Marking now starts at 60% of
 * the old generation's limit (in a task) or 85% (at once), the limit unchanged: 5 mark-compacts,
 * detection runs 6-7% faster with pictures and 4% without (interleaved runs on bench:runner's
 * data), peak RSS as flat (bench:memory).
 */
export const RUNNER_NODE_FLAGS = [
  '--max-semi-space-size=4',
  '--heap-growing-percent=10',
  '--incremental-marking-soft-trigger=60',
  '--incremental-marking-hard-trigger=85',
] as const;

/**
 * The environment a runner process starts with besides its job's (the subprocess tier, the image's
 * entrypoint, the benchmarks). glibc's malloc otherwise raises its mmap threshold as large blocks
 * are freed, up to 32 MiB, and from then on keeps decoded images and tensors in per-thread arenas
 * that it rarely gives back (a runner has a dozen threads: libuv's, libvips', ONNX Runtime's):
 * a fixed 128 KiB threshold maps each large block and unmaps it when freed. Detection runner peak
 * RSS 527 -> 450 MiB (bench:runner). ONNX Runtime's arena is what keeps the session's own tensors
 * from being mapped afresh on every run (runner sessions keep it, without its memory pattern).
 */
export const RUNNER_PROCESS_ENV = { MALLOC_MMAP_THRESHOLD_: '131072' } as const;

/**
 * Host variables a runner process inherits wherever it is started (the subprocess tier, the
 * benchmarks): Node's compile cache. Without it a runner strips its TypeScript at every start and
 * keeps the type stripper resident.
 */
export const RUNNER_COMPILE_CACHE_ENV = ['NODE_COMPILE_CACHE', 'NODE_DISABLE_COMPILE_CACHE'] as const;
export type RunnerEnvInput = z.input<typeof RunnerEnv>;

export class RunnerConfigError extends Error {
  readonly code = 'RUNNER_CONFIG_INVALID';
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`runner configuration is invalid: ${problems.join('; ')}`);
    this.problems = problems;
    this.name = 'RunnerConfigError';
  }
}

/** Rules that span variables; checked on the raw strings so they are reported with field errors. */
function crossFieldProblems(env: NodeJS.ProcessEnv): string[] {
  const problems: string[] = [];
  const type = env.INFERENCE_TYPE;
  if (type === 'test_run' && !env.DATASET_PATH) problems.push('DATASET_PATH is required when INFERENCE_TYPE=test_run');
  if (type && type !== 'test_run' && !env.INPUT_CONFIG && env.INPUT_CONFIG_SOURCE !== 'callback') {
    problems.push(`INPUT_CONFIG is required when INFERENCE_TYPE=${type} (or INPUT_CONFIG_SOURCE=callback)`);
  }
  if (!env.ARTIFACTS_URI && !env.BUCKET_NAME) problems.push('ARTIFACTS_URI or BUCKET_NAME is required');
  const shard = Number(env.SHARD_INDEX ?? env.JOB_COMPLETION_INDEX ?? 0);
  const shards = Number(env.SHARD_COUNT ?? 1);
  if (Number.isInteger(shard) && Number.isInteger(shards) && shard >= shards) problems.push(`SHARD_INDEX ${shard} must be below SHARD_COUNT ${shards}`);
  return problems;
}

/** Reads the runner's configuration; throws one error that names every bad variable. */
export function parseRunnerEnv(env: NodeJS.ProcessEnv): RunnerEnv {
  const result = RunnerEnv.safeParse(env);
  const problems = result.success
    ? []
    : result.error.issues.map((issue) => {
        const name = String(issue.path[0] ?? 'environment');
        const missing = issue.code === 'invalid_type' && env[name] === undefined;
        return missing ? `${name} is missing` : `${name} ${issue.message}`;
      });
  problems.push(...crossFieldProblems(env));
  if (problems.length > 0 || !result.success) throw new RunnerConfigError(problems);
  return result.data;
}

/** Serializes a runner configuration into environment variables (strings only, unset fields left out). */
export function toRunnerEnv(input: RunnerEnvInput): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(input)) {
    if (value === undefined || value === null) continue;
    env[name] = typeof value === 'object' ? JSON.stringify(value) : String(value);
  }
  return env;
}
