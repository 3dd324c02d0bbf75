// Online predictions with the runner's own code: the model loaded once per checkpoint and kept
// warm (its ONNX Runtime session in a worker thread, as a job's), and each image taken through
// the same task and pipeline as a single-image inference job, so that a prediction equals the
// per-image result of a job on the same image and model.
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseRunnerEnv, toRunnerEnv, type ImageResult, type TaskType } from '../contract/index.ts';
import { BackgroundWrites } from '../runner/io/background-writes.ts';
import type { ObjectStore } from '../runner/io/object-store.ts';
import { loadModel, type LoadedModel } from '../runner/model/load-model.ts';
import { processImages } from '../runner/pipeline/process-images.ts';
import { inferenceInputSource } from '../runner/pipeline/inputs.ts';
import { createTask } from '../runner/tasks/create-task.ts';
import type { Logger } from '../http/logger.ts';

export interface PredictInput {
  checkpointPath: string;
  task: TaskType;
  /** An image in storage, or uploaded bytes (kept in a temporary file while predicted). */
  image: { uri: string } | { bytes: Uint8Array; name: string };
  conf?: number | undefined;
  iou?: number | undefined;
  maxDet?: number | undefined;
}

export interface Prediction {
  result: ImageResult;
  /** Semantic segmentation: the class-id PNG, base64. */
  mask_png_base64?: string;
  load_ms: number;
  preprocess_ms: number;
  inference_time_ms: number;
  postprocess_ms: number;
}

export interface PredictorOptions {
  store: ObjectStore;
  /** Scratch space: uploads while predicted, semantic masks. */
  workDir: string;
  /** Warm models kept (least recently used goes first). */
  maxModels: number;
  intraOpThreads?: number | undefined;
  log: Logger;
}

export class Predictor {
  readonly #o: PredictorOptions;
  readonly #models = new Map<string, Promise<LoadedModel>>();

  constructor(opts: PredictorOptions) {
    this.#o = opts;
  }

  /** An image's bytes from storage (ObjectNotFoundError, code OBJECT_NOT_FOUND, when there is none). */
  read(uri: string): Promise<Buffer> {
    return this.#o.store.read(uri);
  }

  async predict(input: PredictInput): Promise<Prediction> {
    const started = performance.now();
    const model = await this.#model(input.checkpointPath, input.task);
    const loadMs = performance.now() - started;
    const id = randomUUID();
    const scratch = join(this.#o.workDir, id);
    let uri: string;
    if ('uri' in input.image) uri = input.image.uri;
    else {
      await mkdir(scratch, { recursive: true });
      const file = join(scratch, input.image.name.replace(/[^\w.-]/g, '_') || 'upload');
      await writeFile(file, input.image.bytes);
      uri = pathToFileURL(file).href;
    }
    try {
      // The environment of a single-image inference job: the same task, thresholds and defaults.
      const env = parseRunnerEnv(
        toRunnerEnv({
          JOB_ID: id,
          TRACE_ID: id,
          INFERENCE_TYPE: 'single',
          BACKEND_BASE_URL: 'http://127.0.0.1:1',
          CALLBACK_TOKEN: 'none',
          TASK_TYPE: input.task,
          CHECKPOINT_PATH: input.checkpointPath,
          INPUT_CONFIG: JSON.stringify({ image_path: uri }),
          ARTIFACTS_URI: pathToFileURL(scratch).href,
          CONF_THRESHOLD: input.conf,
          IOU_THRESHOLD: input.iou,
          MAX_DET: input.maxDet,
          SAVE_VISUALIZATIONS: 'false',
        }),
      );
      const source = await inferenceInputSource(this.#o.store, env.INPUT_CONFIG!, model.metadata.classNames);
      const writes = new BackgroundWrites(this.#o.log);
      const task = createTask(env, { store: this.#o.store, model, source, artifactsUri: env.ARTIFACTS_URI, writes });
      let result: ImageResult | undefined;
      const pipelineStarted = performance.now();
      const stats = await processImages(this.#o.store, model, task, source, {
        batchSize: 1,
        decodeConcurrency: 1,
        onResult: (r) => {
          result = r;
        },
      });
      await writes.flush();
      const total = performance.now() - pipelineStarted;
      const prediction: Prediction = {
        result: { ...result!, image_path: 'uri' in input.image ? result!.image_path : input.image.name },
        load_ms: loadMs,
        preprocess_ms: stats.preprocessMs,
        inference_time_ms: stats.inferenceMs,
        postprocess_ms: Math.max(0, total - stats.preprocessMs - stats.inferenceMs),
      };
      if (result?.mask_path) {
        prediction.mask_png_base64 = (await readFile(fileURLToPath(result.mask_path))).toString('base64');
        prediction.result = { ...prediction.result, mask_path: null };
      }
      return prediction;
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }

  /** The warm model of a checkpoint, loading it once; the least recently used is closed past the bound. */
  async #model(checkpoint: string, task: TaskType): Promise<LoadedModel> {
    const key = `${task}\u0000${checkpoint}`;
    let loading = this.#models.get(key);
    if (loading) this.#models.delete(key);
    else {
      loading = loadModel(this.#o.store, checkpoint, {
        executionProviders: ['cpu'],
        intraOpNumThreads: this.#o.intraOpThreads ?? availableParallelism(),
        expectedTask: task,
      });
      loading.catch(() => this.#models.delete(key));
    }
    this.#models.set(key, loading);
    while (this.#models.size > this.#o.maxModels) {
      const [oldestKey, oldest] = this.#models.entries().next().value!;
      this.#models.delete(oldestKey);
      void oldest.then((m) => m.session.close()).catch(() => undefined);
    }
    return loading;
  }

  async close(): Promise<void> {
    for (const loading of this.#models.values()) await loading.then((m) => m.session.close()).catch(() => undefined);
    this.#models.clear();
  }
}
