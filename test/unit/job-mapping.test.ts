// One mapping between a job's forms: REST request and InferenceJob spec -> definition -> row ->
// spec and runner environment. Round trips come back to where they started.
import { parseRunnerEnv } from '../../src/contract/index.ts';
import { CreateInferenceJob, CreateTestRun } from '../../src/controller/api/requests.ts';
import {
  definitionFromInferenceRequest,
  definitionFromSpec,
  definitionFromTestRunRequest,
  newJobOf,
  runnerEnvFor,
  specFieldOf,
  specFromRow,
  type JobDefinition,
} from '../../src/controller/job-mapping.ts';
import type { Job } from '../../src/db/job-store.ts';
import { InferenceJobSpec } from '../../src/kube/inference-job.ts';
import { buildJob } from '../../src/controller/kubernetes/job-spec.ts';
import { RunnerPodDefaults } from '../../src/controller/kubernetes/runner-pod-defaults.ts';

const ID = '0b7f3d52-9c1e-4f6a-8d2b-5e4c3a2b1f00';
/** The row the store would create from a definition. */
const rowOf = (def: JobDefinition): Job => ({ ...newJobOf(def).row, id: ID, trace_id: 'trace-1', status: 'pending' }) as unknown as Job;
const settings = { callbackUrl: 'http://127.0.0.1:8081', artifactsUri: 's3://artifacts/kinfer', awsRegion: 'eu-west-1', batchSize: 8 };

const SPECS = {
  'test run with everything': {
    type: 'test_run',
    taskType: 'object_detection',
    checkpointPath: 's3://models/yolo.onnx',
    trainingJobId: 'train-42',
    dataset: { path: 's3://data/coco', split: 'val2017' },
    xai: { enabled: false, method: 'gradcam', targetLayer: '/model.9/Concat_output_0', numSamples: 200 },
  },
  'single image': { type: 'inference', taskType: 'image_classification', checkpointPath: '/models/m.onnx', input: { imagePath: 's3://inbox/a.jpg' } },
  'image list': {
    type: 'inference',
    taskType: 'pose_estimation',
    checkpointPath: 'file:///models/m.onnx',
    input: { imagePaths: ['s3://inbox/a.jpg', 's3://inbox/b.png'] },
  },
  folder: { type: 'inference', taskType: 'semantic_segmentation', checkpointPath: 's3://models/x.onnx', input: { datasetPath: 's3://inbox/folder' } },
  sharded: {
    type: 'test_run',
    taskType: 'image_classification',
    checkpointPath: 's3://models/x.onnx',
    dataset: { path: 's3://data/big', split: 'val' },
    parallelism: 8,
    backoffLimit: 3,
  },
} as const;

/** A parsed request that names a checkpoint (not a registered model). */
const checkpointed = <T extends { checkpoint_path?: string | undefined }>(body: T) => body as T & { checkpoint_path: string };

describe('InferenceJob spec <-> definition <-> row', () => {
  it.each(Object.entries(SPECS))('%s: spec -> definition -> row -> spec is the spec (with defaults)', (_name, raw) => {
    const spec = InferenceJobSpec.parse(raw);
    expect(specFromRow(spec.type === 'test_run' ? 'test_run' : 'inference_job', rowOf(definitionFromSpec('eval', spec)))).toEqual(spec);
  });

  it('keeps the definition through row -> spec -> definition', () => {
    const def = definitionFromTestRunRequest(
      checkpointed(
        CreateTestRun.parse({
          checkpoint_path: 's3://models/x.onnx',
          dataset_path: 's3://datasets/x',
          task_type: 'image_classification',
          training_job_id: 't',
          name: 'eval',
          xai_config: { num_samples: 5 },
        }),
      ),
    );
    expect(definitionFromSpec('eval', InferenceJobSpec.parse(specFromRow('test_run', rowOf(def))))).toEqual(def);
  });

  it('reads the inference type off the input field that is set, and null when it cannot tell', () => {
    const def = (input: object) =>
      definitionFromSpec('x', InferenceJobSpec.parse({ type: 'inference', taskType: 'image_classification', checkpointPath: '/m.onnx', input }));
    expect(def({ imagePaths: ['/a.png'] })).toMatchObject({ kind: 'inference_job', inference_type: 'batch', input_config: { image_paths: ['/a.png'] } });
    expect(def({ imagePath: '/a.png', datasetPath: '/d' })).toMatchObject({ inference_type: null });
    expect(def({})).toMatchObject({ inference_type: null });
  });
});

describe('REST request -> definition -> row -> runner environment', () => {
  it('a test run reaches the runner as the contract says', () => {
    const def = definitionFromTestRunRequest(
      checkpointed(
        CreateTestRun.parse({
          checkpoint_path: 's3://models/x.onnx',
          dataset_path: 's3://datasets/x',
          dataset_split: 'val',
          task_type: 'image_classification',
          xai_method: 'lime',
          xai_config: { target_layer: 'conv5', num_samples: 300 },
        }),
      ),
    );
    const env = parseRunnerEnv(runnerEnvFor('test_run', rowOf(def), settings, 'token-1'));
    expect(env).toMatchObject({
      JOB_ID: ID,
      TRACE_ID: 'trace-1',
      INFERENCE_TYPE: 'test_run',
      CALLBACK_TOKEN: 'token-1',
      TASK_TYPE: 'image_classification',
      CHECKPOINT_PATH: 's3://models/x.onnx',
      DATASET_PATH: 's3://datasets/x',
      SPLIT: 'val',
      COMPUTE_METRICS: true,
      ENABLE_XAI: false,
      XAI_METHOD: 'lime',
      XAI_TARGET_LAYER: 'conv5',
      XAI_NUM_SAMPLES: 300,
      ARTIFACTS_URI: 's3://artifacts/kinfer',
      BATCH_SIZE: 8,
      SESSIONS: 'auto',
    });
    // The operator's KINFER_RUNNER_INTRA_OP_THREADS and KINFER_RUNNER_SESSIONS.
    expect(parseRunnerEnv(runnerEnvFor('test_run', rowOf(def), { ...settings, intraOpThreads: 4, sessions: '1' }, 't'))).toMatchObject({
      INTRA_OP_THREADS: 4,
      SESSIONS: 1,
    });
  });

  it('an inference job keeps only the input its type names', () => {
    const def = definitionFromInferenceRequest(
      checkpointed(
        CreateInferenceJob.parse({
          checkpoint_path: '/m.onnx',
          task_type: 'object_detection',
          inference_type: 'batch',
          input_config: { image_paths: ['/a.png', '/b.png'] },
        }),
      ),
    );
    expect(newJobOf(def)).toEqual({
      kind: 'inference_job',
      row: {
        name: null,
        task_type: 'object_detection',
        checkpoint_path: '/m.onnx',
        enable_xai: false,
        xai_method: null,
        xai_config: null,
        inference_type: 'batch',
        input_config: { image_paths: ['/a.png', '/b.png'] },
        parallelism: 1,
        backoff_limit: 0,
      },
    });
    const env = parseRunnerEnv(runnerEnvFor('inference_job', rowOf(def), settings, 't'));
    expect(env).toMatchObject({ INFERENCE_TYPE: 'batch', INPUT_CONFIG: { image_paths: ['/a.png', '/b.png'] }, COMPUTE_METRICS: false });
  });
});

describe('sharded jobs', () => {
  const spec = InferenceJobSpec.parse(SPECS.sharded);
  const row = rowOf(definitionFromSpec('big', spec));

  it("reach each runner as SHARD_COUNT, with its shard from SHARD_INDEX or an Indexed Job's JOB_COMPLETION_INDEX", () => {
    const env = runnerEnvFor('test_run', row, settings, 't');
    expect(env).toMatchObject({ SHARD_COUNT: '8' });
    expect(env.SHARD_INDEX).toBeUndefined();
    expect(parseRunnerEnv({ ...env, JOB_COMPLETION_INDEX: '5' })).toMatchObject({ SHARD_COUNT: 8, SHARD_INDEX: 5 });
    expect(parseRunnerEnv({ ...env, SHARD_INDEX: '2', JOB_COMPLETION_INDEX: '5' })).toMatchObject({ SHARD_INDEX: 2 });
    expect(() => parseRunnerEnv({ ...env, SHARD_INDEX: '8' })).toThrow(/SHARD_INDEX 8 must be below SHARD_COUNT 8/);
    // One shard: nothing about shards in the environment, shard 0.
    const single = runnerEnvFor('test_run', rowOf(definitionFromSpec('one', InferenceJobSpec.parse({ ...SPECS.sharded, parallelism: 1 }))), settings, 't');
    expect(single.SHARD_COUNT).toBeUndefined();
    expect(parseRunnerEnv(single)).toMatchObject({ SHARD_COUNT: 1, SHARD_INDEX: 0 });
  });

  it('run as one Indexed Job with a Pod per shard and the backoff limit asked for', () => {
    const ij = { apiVersion: 'kinfer.io/v1alpha1', kind: 'InferenceJob', metadata: { name: 'big', namespace: 'ml', uid: ID }, spec };
    const job = buildJob(ij, ID, runnerEnvFor('test_run', row, settings, 't'), {
      image: 'kinfer:test',
      args: ['runner'],
      defaultTtlSecondsAfterFinished: 60,
      defaults: RunnerPodDefaults.parse({}),
    });
    expect(job.spec).toMatchObject({ completionMode: 'Indexed', completions: 8, parallelism: 8, backoffLimit: 3 });
    const one = buildJob(
      { ...ij, spec: { ...spec, parallelism: 1 } },
      ID,
      {},
      { image: 'kinfer:test', args: [], defaultTtlSecondsAfterFinished: 60, defaults: RunnerPodDefaults.parse({}) },
    );
    expect(one.spec!.completionMode).toBeUndefined();
    expect(one.spec!.completions).toBeUndefined();
  });
});

describe('field names at the kubectl door', () => {
  it.each([
    ['checkpoint_path', 'spec.checkpointPath'],
    ['dataset_split', 'spec.dataset.split'],
    ['input_config.image_paths.2', 'spec.input.imagePaths[2]'],
    ['xai_config.num_samples', 'spec.xai.numSamples'],
    ['enable_xai', 'spec.xai.enabled'],
  ])('%s is %s', (rest, kube) => {
    expect(specFieldOf(rest)).toBe(kube);
  });
});
