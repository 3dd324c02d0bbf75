import { parseRunnerEnv, toRunnerEnv } from '../../src/contract/index.ts';

const valid: Record<string, string> = {
  JOB_ID: '6f1c2d4e-8a3b-4c5d-9e7f-0a1b2c3d4e5f',
  TRACE_ID: 't-1',
  INFERENCE_TYPE: 'test_run',
  BACKEND_BASE_URL: 'http://127.0.0.1:8081',
  CALLBACK_TOKEN: 'x.y.z',
  TASK_TYPE: 'image_classification',
  CHECKPOINT_PATH: 's3://models/m.onnx',
  DATASET_PATH: 's3://data/colors',
  BUCKET_NAME: 'artifacts',
};

describe('runner environment contract', () => {
  it('parses the seed variables with defaults', () => {
    const env = parseRunnerEnv(valid);
    expect(env.ARTIFACTS_URI).toBe('s3://artifacts');
    expect(env.SPLIT).toBe('test');
    expect(env.COMPUTE_METRICS).toBe(true);
    expect(env.BATCH_SIZE).toBe(16);
  });

  it('names every missing or invalid variable in one error', () => {
    const { JOB_ID: _, DATASET_PATH: __, ...rest } = valid;
    expect(() => parseRunnerEnv({ ...rest, CHECKPOINT_PATH: 'ftp://x/m.onnx' })).toThrow(
      /JOB_ID is missing.*CHECKPOINT_PATH .*only s3:\/\/ and file:\/\/.*DATASET_PATH is required when INFERENCE_TYPE=test_run/,
    );
  });

  it('round-trips an inference job configuration through environment strings', () => {
    const { DATASET_PATH: _, ...rest } = valid;
    const env = toRunnerEnv({
      ...(rest as Parameters<typeof toRunnerEnv>[0]),
      INFERENCE_TYPE: 'batch',
      INPUT_CONFIG: JSON.stringify({ image_paths: ['/a.jpg', 's3://b/c.png'] }),
    });
    expect(parseRunnerEnv(env).INPUT_CONFIG).toEqual({ image_paths: ['/a.jpg', 's3://b/c.png'] });
  });
});
