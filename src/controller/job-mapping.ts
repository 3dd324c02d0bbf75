// Every conversion of a job between its forms, in one place and each a pure function:
//   REST request  -> JobDefinition  (what the admission checks, in the REST API's field names)
//   InferenceJob  -> JobDefinition
//   JobDefinition -> new row        (after admission)
//   row           -> InferenceJob spec (the resource that mirrors a REST-submitted job)
//   row           -> runner environment (the contract)
// and the spelling of a definition's field at the kubectl door (`spec.dataset.split`).
import {
  parseStorageUri,
  toRunnerEnv,
  type BucketCredentialsMap,
  type InferenceType,
  type InputConfig,
  type JobKind,
  type TaskType,
  type XaiMethod,
} from '../contract/index.ts';
import type { InferenceJob as InferenceJobRow, TestRun } from '../db/entities.ts';
import type { Job, NewInferenceJob, NewTestRun } from '../db/job-store.ts';
import type { InferenceJobSpec } from '../kube/inference-job.ts';
import type { CreateInferenceJob, CreateTestRun } from './api/requests.ts';

/** XAI settings as stored (`xai_config` column) and requested. */
export interface XaiConfig {
  target_layer?: string;
  num_samples?: number;
  images?: string;
  target?: 'predicted' | 'true';
}

interface CommonDefinition {
  name: string | null;
  task_type: TaskType;
  /** '' when the request names a registered model instead (the admission resolves it). */
  checkpoint_path: string;
  /** A registered model (name@version, name:stage, name), or null. */
  model: string | null;
  enable_xai: boolean;
  xai_method: XaiMethod | null;
  xai_config: XaiConfig | null;
  /** Shards side by side (1: one runner). */
  parallelism: number;
  /** Restarts of a crashed runner. */
  backoff_limit: number;
}

export interface TestRunDefinition extends CommonDefinition {
  kind: 'test_run';
  dataset_path: string;
  dataset_split: string;
  training_job_id: string | null;
}

/** The input as asked for: the admission checks that exactly the one `inference_type` names is set. */
export interface RequestedInput {
  image_path?: string | undefined;
  image_paths?: string[] | undefined;
  dataset_path?: string | undefined;
}

export interface InferenceJobDefinition extends CommonDefinition {
  kind: 'inference_job';
  /** null when an InferenceJob's input does not say (none or several of its fields set). */
  inference_type: Exclude<InferenceType, 'test_run'> | null;
  input_config: RequestedInput;
}

/** A job as requested, whichever door it came by, in the REST API's field names. */
export type JobDefinition = TestRunDefinition | InferenceJobDefinition;

export type NewJob = { kind: 'test_run'; row: NewTestRun } | { kind: 'inference_job'; row: NewInferenceJob };

const INPUT_KEY = { single: 'image_path', batch: 'image_paths', dataset: 'dataset_path' } as const;

function xaiConfigOf(
  config:
    { target_layer?: string | undefined; num_samples?: number | undefined; images?: string | undefined; target?: 'predicted' | 'true' | undefined } | undefined,
): XaiConfig | null {
  if (!config) return null;
  const out: XaiConfig = {};
  if (config.target_layer !== undefined) out.target_layer = config.target_layer;
  if (config.num_samples !== undefined) out.num_samples = config.num_samples;
  if (config.images !== undefined) out.images = config.images;
  if (config.target !== undefined) out.target = config.target;
  return Object.keys(out).length > 0 ? out : null;
}

/** The fields both kinds of REST request share. */
function commonOfRequest(body: CreateTestRun | CreateInferenceJob): CommonDefinition {
  return {
    name: body.name ?? null,
    task_type: body.task_type,
    checkpoint_path: body.checkpoint_path ?? '',
    model: body.model ?? null,
    enable_xai: body.enable_xai,
    xai_method: body.xai_method ?? null,
    xai_config: xaiConfigOf(body.xai_config),
    parallelism: body.parallelism,
    backoff_limit: body.backoff_limit,
  };
}

export function definitionFromTestRunRequest(body: CreateTestRun): TestRunDefinition {
  return {
    kind: 'test_run',
    ...commonOfRequest(body),
    dataset_path: body.dataset_path,
    dataset_split: body.dataset_split,
    training_job_id: body.training_job_id ?? null,
  };
}

export function definitionFromInferenceRequest(body: CreateInferenceJob): InferenceJobDefinition {
  return {
    kind: 'inference_job',
    ...commonOfRequest(body),
    inference_type: body.inference_type,
    input_config: body.input_config,
  };
}

/** An InferenceJob's spec (parsed) as a definition; its name is the resource's name. */
export function definitionFromSpec(name: string, spec: InferenceJobSpec): JobDefinition {
  const common = {
    name,
    task_type: spec.taskType,
    checkpoint_path: spec.checkpointPath ?? '',
    model: spec.model ?? null,
    enable_xai: spec.xai?.enabled ?? false,
    xai_method: spec.xai?.method ?? null,
    xai_config: xaiConfigOf(
      spec.xai && { target_layer: spec.xai.targetLayer, num_samples: spec.xai.numSamples, images: spec.xai.images, target: spec.xai.target },
    ),
    parallelism: spec.parallelism ?? 1,
    backoff_limit: spec.backoffLimit ?? 0,
  };
  if (spec.type === 'test_run') {
    return {
      kind: 'test_run',
      ...common,
      dataset_path: spec.dataset?.path ?? '',
      dataset_split: spec.dataset?.split ?? 'test',
      training_job_id: spec.trainingJobId ?? null,
    };
  }
  const input = spec.input ?? {};
  const given = (['single', 'batch', 'dataset'] as const).filter((t) => input[SPEC_INPUT_KEY[t]] !== undefined);
  return {
    kind: 'inference_job',
    ...common,
    inference_type: given.length === 1 ? given[0]! : null,
    input_config: { image_path: input.imagePath, image_paths: input.imagePaths, dataset_path: input.datasetPath },
  };
}

const SPEC_INPUT_KEY = { single: 'imagePath', batch: 'imagePaths', dataset: 'datasetPath' } as const;

/** The stored input of an admitted definition: the one field its inference type names. */
export function inputConfigOf(type: Exclude<InferenceType, 'test_run'>, input: RequestedInput): InputConfig {
  if (type === 'single') return { image_path: input.image_path! };
  if (type === 'batch') return { image_paths: input.image_paths! };
  return { dataset_path: input.dataset_path! };
}

/** The row of an admitted definition. */
export function newJobOf(def: JobDefinition): NewJob {
  const common = {
    name: def.name,
    task_type: def.task_type,
    checkpoint_path: def.checkpoint_path,
    enable_xai: def.enable_xai,
    xai_method: def.xai_method,
    xai_config: def.xai_config as Record<string, unknown> | null,
    parallelism: def.parallelism,
    backoff_limit: def.backoff_limit,
  };
  if (def.kind === 'test_run') {
    return { kind: 'test_run', row: { ...common, dataset_path: def.dataset_path, dataset_split: def.dataset_split, training_job_id: def.training_job_id } };
  }
  const type = def.inference_type!;
  return { kind: 'inference_job', row: { ...common, inference_type: type, input_config: inputConfigOf(type, def.input_config) } };
}

/** The spec of the InferenceJob that mirrors a job submitted through the REST API. */
export function specFromRow(kind: JobKind, row: Job): InferenceJobSpec {
  const xaiConfig = (row.xai_config ?? {}) as XaiConfig;
  const xai =
    row.enable_xai || row.xai_method || row.xai_config
      ? {
          xai: {
            enabled: row.enable_xai,
            ...(row.xai_method ? { method: row.xai_method } : {}),
            ...(xaiConfig.target_layer !== undefined ? { targetLayer: xaiConfig.target_layer } : {}),
            ...(xaiConfig.num_samples !== undefined ? { numSamples: xaiConfig.num_samples } : {}),
            ...(xaiConfig.images !== undefined ? { images: xaiConfig.images } : {}),
            ...(xaiConfig.target !== undefined ? { target: xaiConfig.target } : {}),
          },
        }
      : {};
  const common = { taskType: row.task_type, checkpointPath: row.checkpoint_path, parallelism: row.parallelism, backoffLimit: row.backoff_limit, ...xai };
  if (kind === 'test_run') {
    const run = row as TestRun;
    return {
      type: 'test_run',
      ...common,
      ...(run.training_job_id ? { trainingJobId: run.training_job_id } : {}),
      dataset: { path: run.dataset_path, split: run.dataset_split },
    };
  }
  const input = (row as InferenceJobRow).input_config;
  return {
    type: 'inference',
    ...common,
    input:
      'image_path' in input
        ? { imagePath: input.image_path }
        : 'image_paths' in input
          ? { imagePaths: input.image_paths }
          : { datasetPath: input.dataset_path },
  };
}

/** Deployment settings of every runner (from the controller's configuration). */
export interface RunnerSettings {
  callbackUrl: string;
  artifactsUri: string;
  s3Endpoint?: string | undefined;
  awsRegion: string;
  awsAccessKeyId?: string | undefined;
  awsSecretAccessKey?: string | undefined;
  batchSize?: number | undefined;
  intraOpThreads?: number | undefined;
  /** The sessions a batch is split over (SESSIONS: `auto` or a number; the runner's default `auto`). */
  sessions?: string | undefined;
  heartbeatSeconds?: number | undefined;
  /** The most images one job may have (KINFER_MAX_IMAGES_PER_JOB). */
  maxImagesPerJob?: number | undefined;
  /** Buckets with their own credentials; a runner gets the entries of its job's buckets only. */
  bucketCredentials?: BucketCredentialsMap | undefined;
  /** An OpenAI-compatible endpoint for natural-language explanations (optional). */
  xaiLlm?: { baseUrl: string; model: string | undefined; apiKey: string | undefined } | undefined;
}

/** The credentials of the buckets this job reads or writes (JSON), or undefined when none has its own. */
function bucketCredentialsFor(job: Job, settings: RunnerSettings): string | undefined {
  const all = settings.bucketCredentials ?? {};
  if (Object.keys(all).length === 0) return undefined;
  const input = (job as Partial<InferenceJobRow>).input_config as { image_path?: string; image_paths?: string[]; dataset_path?: string } | undefined;
  const uris = [
    job.checkpoint_path,
    settings.artifactsUri,
    (job as Partial<TestRun>).dataset_path,
    input?.image_path,
    input?.dataset_path,
    ...(input?.image_paths ?? []),
  ];
  const mine: BucketCredentialsMap = {};
  for (const uri of uris) {
    if (!uri?.startsWith('s3://')) continue;
    const { bucket } = parseStorageUri(uri) as { bucket: string };
    if (all[bucket]) mine[bucket] = all[bucket];
  }
  return Object.keys(mine).length > 0 ? JSON.stringify(mine) : undefined;
}

/** One job's runner environment, per the contract. */
export function runnerEnvFor(kind: JobKind, job: Job, settings: RunnerSettings, callbackToken: string): Record<string, string> {
  const xaiConfig = (job.xai_config ?? {}) as XaiConfig;
  const common = {
    JOB_ID: job.id,
    TRACE_ID: job.trace_id,
    BACKEND_BASE_URL: settings.callbackUrl,
    CALLBACK_TOKEN: callbackToken,
    TASK_TYPE: job.task_type,
    CHECKPOINT_PATH: job.checkpoint_path,
    ENABLE_XAI: job.enable_xai ? 'true' : 'false',
    XAI_METHOD: job.xai_method ?? undefined,
    XAI_TARGET_LAYER: xaiConfig.target_layer,
    XAI_NUM_SAMPLES: xaiConfig.num_samples,
    XAI_IMAGES: xaiConfig.images,
    XAI_TARGET: xaiConfig.target,
    XAI_LLM_BASE_URL: job.enable_xai ? settings.xaiLlm?.baseUrl : undefined,
    XAI_LLM_MODEL: job.enable_xai ? settings.xaiLlm?.model : undefined,
    XAI_LLM_API_KEY: job.enable_xai ? settings.xaiLlm?.apiKey : undefined,
    ARTIFACTS_URI: settings.artifactsUri,
    S3_ENDPOINT: settings.s3Endpoint,
    AWS_REGION: settings.awsRegion,
    AWS_ACCESS_KEY_ID: settings.awsAccessKeyId,
    AWS_SECRET_ACCESS_KEY: settings.awsSecretAccessKey,
    BATCH_SIZE: settings.batchSize,
    INTRA_OP_THREADS: settings.intraOpThreads,
    SESSIONS: settings.sessions,
    HEARTBEAT_SECONDS: settings.heartbeatSeconds,
    MAX_IMAGES: settings.maxImagesPerJob,
    S3_BUCKET_CREDENTIALS: bucketCredentialsFor(job, settings),
    // The shard index is the executor's: a subprocess's SHARD_INDEX, an Indexed Job's JOB_COMPLETION_INDEX.
    SHARD_COUNT: job.parallelism > 1 ? job.parallelism : undefined,
  } as const;
  if (kind === 'test_run') {
    const run = job as TestRun;
    return toRunnerEnv({ ...common, INFERENCE_TYPE: 'test_run', DATASET_PATH: run.dataset_path, SPLIT: run.dataset_split, COMPUTE_METRICS: 'true' });
  }
  const inference = job as InferenceJobRow;
  const input = JSON.stringify(inference.input_config);
  // A long list stays in the database and the runner asks the callback service for it: one
  // environment variable holds at most 128 KiB on Linux (3,000 paths failed `spawn E2BIG`).
  const inline = Buffer.byteLength(input) <= MAX_INLINE_INPUT_BYTES;
  return toRunnerEnv({
    ...common,
    INFERENCE_TYPE: inference.inference_type,
    INPUT_CONFIG: inline ? input : undefined,
    INPUT_CONFIG_SOURCE: inline ? 'env' : 'callback',
    COMPUTE_METRICS: 'false',
  });
}

/** The largest input_config passed in the runner's environment; longer ones are read through the callback service. */
export const MAX_INLINE_INPUT_BYTES = 16 * 1024;

const SPEC_FIELD: Record<string, string> = {
  name: 'metadata.name',
  task_type: 'spec.taskType',
  checkpoint_path: 'spec.checkpointPath',
  model: 'spec.model',
  training_job_id: 'spec.trainingJobId',
  dataset_path: 'spec.dataset.path',
  dataset_split: 'spec.dataset.split',
  inference_type: 'spec.input',
  input_config: 'spec.input',
  'input_config.image_path': 'spec.input.imagePath',
  'input_config.image_paths': 'spec.input.imagePaths',
  'input_config.dataset_path': 'spec.input.datasetPath',
  enable_xai: 'spec.xai.enabled',
  xai_method: 'spec.xai.method',
  xai_config: 'spec.xai',
  parallelism: 'spec.parallelism',
  backoff_limit: 'spec.backoffLimit',
  'xai_config.target_layer': 'spec.xai.targetLayer',
  'xai_config.num_samples': 'spec.xai.numSamples',
  'xai_config.images': 'spec.xai.images',
  'xai_config.target': 'spec.xai.target',
};

/** How the kubectl door spells a definition's field: `input_config.image_paths.2` -> `spec.input.imagePaths[2]`. */
export function specFieldOf(field: string): string {
  const index = /^(.*)\.(\d+)$/.exec(field);
  if (index) return `${specFieldOf(index[1]!)}[${index[2]}]`;
  return SPEC_FIELD[field] ?? field;
}

/** The REST field names of the input config keys, by inference type. */
export { INPUT_KEY };
