// Builds one job's runner environment from its row, per the contract.
import { toRunnerEnv, type JobKind } from '../contract/index.ts';
import type { Job } from '../db/job-store.ts';
import type { InferenceJob, TestRun } from '../db/entities.ts';
import type { TokenIssuer } from './token-issuer.ts';

export interface RunnerSettings {
  callbackUrl: string;
  artifactsUri: string;
  s3Endpoint?: string | undefined;
  awsRegion: string;
  awsAccessKeyId?: string | undefined;
  awsSecretAccessKey?: string | undefined;
  batchSize?: number | undefined;
  intraOpThreads?: number | undefined;
}

export function runnerEnvFor(kind: JobKind, job: Job, settings: RunnerSettings, tokens: TokenIssuer): Record<string, string> {
  const common = {
    JOB_ID: job.id,
    TRACE_ID: job.trace_id,
    BACKEND_BASE_URL: settings.callbackUrl,
    CALLBACK_TOKEN: tokens.issue(kind, job.id),
    TASK_TYPE: job.task_type,
    CHECKPOINT_PATH: job.checkpoint_path,
    ENABLE_XAI: job.enable_xai ? 'true' : 'false',
    XAI_METHOD: job.xai_method ?? undefined,
    ARTIFACTS_URI: settings.artifactsUri,
    S3_ENDPOINT: settings.s3Endpoint,
    AWS_REGION: settings.awsRegion,
    AWS_ACCESS_KEY_ID: settings.awsAccessKeyId,
    AWS_SECRET_ACCESS_KEY: settings.awsSecretAccessKey,
    BATCH_SIZE: settings.batchSize,
    INTRA_OP_THREADS: settings.intraOpThreads,
  } as const;
  if (kind === 'test_run') {
    const run = job as TestRun;
    return toRunnerEnv({ ...common, INFERENCE_TYPE: 'test_run', DATASET_PATH: run.dataset_path, SPLIT: run.dataset_split, COMPUTE_METRICS: 'true' });
  }
  const inference = job as InferenceJob;
  return toRunnerEnv({ ...common, INFERENCE_TYPE: inference.inference_type, INPUT_CONFIG: JSON.stringify(inference.input_config), COMPUTE_METRICS: 'false' });
}
