// Online predictions with the runner's own code: a model loaded once per checkpoint and kept warm
// (its ONNX Runtime session in a worker thread, as a job's), requests batched dynamically, and
// each batch taken through the same task and pipeline as a batch inference job, so that a
// prediction equals the per-image result of a job on the same image and model.
//
// Reloading loads the new session beside the old one and swaps them atomically; the old one
// answers what it was given, then closes (drained). The least recently used model beyond the
// bound is retired the same way.
import { randomUUID } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseRunnerEnv, toRunnerEnv, XAI_DEFAULTS, type ImageResult, type TaskType, type XaiMethod } from '../contract/index.ts';
import { BackgroundWrites } from '../runner/io/background-writes.ts';
import type { ObjectStore } from '../runner/io/object-store.ts';
import { explainerOf, loadModel, type LoadedModel } from '../runner/model/load-model.ts';
import type { SampleSource } from '../runner/pipeline/inputs.ts';
import { processImages } from '../runner/pipeline/process-images.ts';
import { createTask } from '../runner/tasks/create-task.ts';
import type { Explainer } from '../runner/xai/explainer.ts';
import { XaiJob } from '../runner/xai/xai-job.ts';
import type { Logger } from '../http/logger.ts';
import { DynamicBatcher, type Batched } from './batcher.ts';

/** Which model answers: a checkpoint for a task, and the registry entry it came from (if any). */
export interface ModelTarget {
  checkpointPath: string;
  task: TaskType;
  name?: string | undefined;
  version?: string | undefined;
  /** Dynamic batching of this model (the registry's `serving`, else the predictor's defaults). */
  maxBatchSize?: number | undefined;
  maxQueueDelayMs?: number | undefined;
  /** Explanations: the model is then loaded with what the method reads (its own warm session). */
  xai?: { method: XaiMethod; targetLayer: string | undefined } | undefined;
  /**
   * Fed float tensors as exported (Open Inference Protocol). Otherwise the session takes the
   * decoded uint8 pixels and converts them in the graph, as a job's runner does (model/uint8-input.ts).
   */
  tensorInput?: boolean | undefined;
}

export interface PredictParams {
  conf?: number | undefined;
  iou?: number | undefined;
  maxDet?: number | undefined;
}

export interface PredictInput extends PredictParams {
  target: ModelTarget;
  /** The image's bytes and the name its result carries (`image_path`, as a job names it). */
  image: { bytes: Uint8Array; name: string };
}

export interface Prediction {
  result: ImageResult;
  /** Semantic segmentation: the class-id PNG, base64. */
  mask_png_base64?: string;
  load_ms: number;
  queue_ms: number;
  batch_size: number;
  preprocess_ms: number;
  inference_time_ms: number;
  postprocess_ms: number;
}

export interface PredictorOptions {
  store: ObjectStore;
  /** Scratch space: semantic masks while they are read back. */
  workDir: string;
  /** Warm models kept (least recently used goes first). */
  maxModels: number;
  intraOpThreads?: number | undefined;
  /** ONNX Runtime's pool threads spin between runs (KINFER_PREDICTOR_ORT_SPINNING): throughput under load. */
  allowSpinning?: boolean | undefined;
  /** Defaults of dynamic batching, for models that do not set theirs. */
  maxBatchSize: number;
  maxQueueDelayMs: number;
  log: Logger;
}

/** What the predictor tells of one warm model (GET /api/v1/models/{name}/info). */
export interface ServedModelInfo {
  name: string | null;
  version: string | null;
  checkpoint_path: string;
  task_type: TaskType;
  /**
   * What this session answers: `predict`, `predict+explain:<method>` (predictions with
   * explanations), or `v2` (the Open Inference Protocol's float tensors, the model as exported).
   */
  serves: string;
  loaded_at: string;
  last_reloaded: string | null;
  inference_count: number;
  mean_latency_ms: number | null;
  p95_latency_ms: number | null;
  in_flight: number;
}

type Item = PredictParams & { bytes: Uint8Array; name: string };
type Answer = Omit<Prediction, 'load_ms' | 'queue_ms' | 'batch_size'>;

const LATENCY_WINDOW = 1000;

/** One warm model: its session, its batchers (one per parameter set), and what it has served. */
class ServedModel {
  readonly loadedAt = new Date();
  lastReloaded: Date | null = null;
  count = 0;
  inFlight = 0;
  retired = false;
  readonly #latencies: number[] = [];
  readonly batchers = new Map<string, DynamicBatcher<Item, Answer>>();

  readonly target: ModelTarget;
  readonly model: LoadedModel;
  readonly explainer: Explainer | undefined;

  constructor(target: ModelTarget, model: LoadedModel, explainer?: Explainer) {
    this.target = target;
    this.model = model;
    this.explainer = explainer;
  }

  record(ms: number): void {
    this.count++;
    this.#latencies.push(ms);
    if (this.#latencies.length > LATENCY_WINDOW) this.#latencies.shift();
  }

  info(): ServedModelInfo {
    const sorted = [...this.#latencies].sort((a, b) => a - b);
    const mean = sorted.length ? sorted.reduce((a, b) => a + b, 0) / sorted.length : null;
    return {
      name: this.target.name ?? null,
      version: this.target.version ?? null,
      checkpoint_path: this.target.checkpointPath,
      task_type: this.target.task,
      serves: this.target.tensorInput ? 'v2' : this.target.xai ? `predict+explain:${this.target.xai.method}` : 'predict',
      loaded_at: this.loadedAt.toISOString(),
      last_reloaded: this.lastReloaded?.toISOString() ?? null,
      inference_count: this.count,
      mean_latency_ms: mean,
      p95_latency_ms: sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(0.95 * sorted.length) - 1)]! : null,
      in_flight: this.inFlight,
    };
  }

  /** Closes the session once nothing is in flight (now, or when the last request ends). */
  retire(): void {
    this.retired = true;
    this.closeIfDrained();
  }

  closeIfDrained(): void {
    if (this.retired && this.inFlight === 0) {
      void this.model.session.close().catch(() => undefined);
      void this.explainer?.close().catch(() => undefined);
    }
  }
}

const keyOf = (t: ModelTarget) =>
  [t.task, t.checkpointPath, t.name ?? '', t.version ?? '', t.xai ? `${t.xai.method}:${t.xai.targetLayer ?? ''}` : '', t.tensorInput ? 'tensor' : ''].join(
    '\u0000',
  );

export class Predictor {
  readonly #o: PredictorOptions;
  /** Told of each batch run (metrics). */
  onBatch: ((target: ModelTarget, size: number) => void) | undefined;
  /** Warm models by key, least recently used first; a promise while loading. */
  readonly #served = new Map<string, Promise<ServedModel>>();

  constructor(opts: PredictorOptions) {
    this.#o = opts;
  }

  /** An image's bytes from storage (ObjectNotFoundError, code OBJECT_NOT_FOUND, when there is none). */
  read(uri: string): Promise<Buffer> {
    return this.#o.store.read(uri);
  }

  /** The warm model of a target, loaded if it is not (model problems throw with their codes). */
  async model(target: ModelTarget): Promise<LoadedModel> {
    return (await this.#slot(target)).served.model;
  }

  async predict(input: PredictInput): Promise<Prediction> {
    const started = performance.now();
    const { served, loadMs } = await this.#slot(input.target);
    served.inFlight++;
    try {
      const params = `${input.conf ?? ''}\u0000${input.iou ?? ''}\u0000${input.maxDet ?? ''}`;
      let batcher = served.batchers.get(params);
      if (!batcher) {
        batcher = new DynamicBatcher<Item, Answer>(
          {
            maxBatchSize: served.target.maxBatchSize ?? this.#o.maxBatchSize,
            maxQueueDelayMs: served.target.maxQueueDelayMs ?? this.#o.maxQueueDelayMs,
          },
          (items) => this.#runBatch(served, items),
        );
        served.batchers.set(params, batcher);
      }
      const answered: Batched<Answer> = await batcher.submit({
        bytes: input.image.bytes,
        name: input.image.name,
        conf: input.conf,
        iou: input.iou,
        maxDet: input.maxDet,
      });
      served.record(performance.now() - started);
      return { ...answered.value, load_ms: loadMs, queue_ms: answered.queueMs, batch_size: answered.batchSize };
    } finally {
      served.inFlight--;
      served.closeIfDrained();
    }
  }

  /** Runs one raw tensor through a model's session (Open Inference Protocol). */
  async infer(target: ModelTarget, data: Float32Array, dims: number[]) {
    const { served } = await this.#slot(target);
    served.inFlight++;
    const started = performance.now();
    try {
      const out = await served.model.session.run(data, dims);
      served.record(performance.now() - started);
      return out;
    } finally {
      served.inFlight--;
      served.closeIfDrained();
    }
  }

  /** The warm models (all, or those of one registered name). */
  info(name?: string): ServedModelInfo[] {
    return this.#ready()
      .filter((s) => name === undefined || s.target.name === name)
      .map((s) => s.info());
  }

  /**
   * Loads every warm model of a registered name again (the file may have changed), each beside
   * its old session, then swaps; requests in flight finish on the old one. A version that fails
   * to load keeps its old session, and the error is thrown after the others are swapped.
   */
  async reload(name: string, resolve: (version: string) => Promise<ModelTarget | null>): Promise<ServedModelInfo[]> {
    const current = this.#ready().filter((s) => s.target.name === name);
    const reloaded: ServedModelInfo[] = [];
    let failure: unknown;
    for (const old of current) {
      try {
        // The registry says which file; how it is served (explanations, tensor input) stays.
        const target = { ...((await resolve(old.target.version!)) ?? old.target), xai: old.target.xai, tensorInput: old.target.tensorInput };
        const fresh = await this.#load(target);
        fresh.lastReloaded = new Date();
        this.#served.delete(keyOf(old.target));
        this.#served.set(keyOf(target), Promise.resolve(fresh));
        this.#warm.add(fresh);
        this.#retire(old);
        reloaded.push(fresh.info());
        this.#o.log.info({ model: name, version: target.version }, 'model reloaded');
      } catch (err) {
        failure ??= err;
      }
    }
    if (failure) throw failure;
    return reloaded;
  }

  /** Names of registered models that are warm (SIGHUP reloads them all). */
  warmNames(): string[] {
    return [...new Set(this.#ready().flatMap((s) => (s.target.name ? [s.target.name] : [])))];
  }

  async close(): Promise<void> {
    for (const loading of this.#served.values()) await loading.then((s) => this.#retire(s)).catch(() => undefined);
    this.#served.clear();
  }

  /** Loaded and not retired. */
  readonly #warm = new Set<ServedModel>();
  #ready(): ServedModel[] {
    return [...this.#warm];
  }

  #retire(served: ServedModel): void {
    this.#warm.delete(served);
    served.retire();
  }

  /** A model's session (with what its explanation reads, when asked), and its explainer. */
  async #load(target: ModelTarget): Promise<ServedModel> {
    const sessionOptions = {
      executionProviders: ['cpu'],
      intraOpNumThreads: this.#o.intraOpThreads ?? availableParallelism(),
      allowSpinning: this.#o.allowSpinning ?? false,
    };
    const model = await loadModel(this.#o.store, target.checkpointPath, {
      ...sessionOptions,
      expectedTask: target.task,
      xai: target.xai,
      uint8Input: !target.tensorInput,
    });
    if (!target.xai || !model.xai) return new ServedModel(target, model);
    try {
      const explainer = await explainerOf(
        model,
        { method: target.xai.method, numSamples: XAI_DEFAULTS.numSamples, images: { kind: 'all' }, target: 'predicted', llm: undefined },
        sessionOptions,
      );
      return new ServedModel(target, model, explainer);
    } catch (err) {
      await model.session.close();
      throw err;
    }
  }

  /** The warm model of a target, loading it once; the least recently used is retired past the bound. */
  async #slot(target: ModelTarget): Promise<{ served: ServedModel; loadMs: number }> {
    const started = performance.now();
    const key = keyOf(target);
    let loading = this.#served.get(key);
    if (loading) this.#served.delete(key);
    else {
      loading = this.#load(target).then((served) => {
        this.#warm.add(served);
        return served;
      });
      loading.catch(() => {
        if (this.#served.get(key) === loading) this.#served.delete(key);
      });
    }
    this.#served.set(key, loading);
    while (this.#served.size > this.#o.maxModels) {
      const [oldestKey, oldest] = this.#served.entries().next().value!;
      this.#served.delete(oldestKey);
      void oldest.then((s) => this.#retire(s)).catch(() => undefined);
    }
    const served = await loading;
    return { served, loadMs: performance.now() - started };
  }

  /** One batch through the pipeline of a batch inference job on these images. */
  async #runBatch(served: ServedModel, items: Item[]): Promise<Answer[]> {
    const { model, target } = served;
    const id = randomUUID();
    const scratch = join(this.#o.workDir, id);
    const uris = items.map((_, i) => pathToFileURL(join(scratch, 'in', String(i))).href);
    const { conf, iou, maxDet } = items[0]!;
    try {
      const env = parseRunnerEnv(
        toRunnerEnv({
          JOB_ID: id,
          TRACE_ID: id,
          INFERENCE_TYPE: 'batch',
          BACKEND_BASE_URL: 'http://127.0.0.1:1',
          CALLBACK_TOKEN: 'none',
          TASK_TYPE: target.task,
          CHECKPOINT_PATH: target.checkpointPath,
          INPUT_CONFIG: JSON.stringify({ image_paths: uris }),
          ARTIFACTS_URI: pathToFileURL(scratch).href,
          CONF_THRESHOLD: conf,
          IOU_THRESHOLD: iou,
          MAX_DET: maxDet,
          SAVE_VISUALIZATIONS: 'false',
        }),
      );
      // The images are in memory: the pipeline reads them from here, named as the caller named them.
      const bytes = new Map(uris.map((uri, i) => [uri, items[i]!.bytes]));
      const memory = { read: async (uri: string) => Buffer.from(bytes.get(uri)!) } as unknown as ObjectStore;
      const source: SampleSource = {
        total: items.length,
        classNames: model.metadata.classNames,
        async *samples() {
          for (const [index, uri] of uris.entries()) yield { index, uri, name: items[index]!.name };
        },
      };
      const writes = new BackgroundWrites(this.#o.log);
      const task = createTask(env, { store: this.#o.store, model, source, artifactsUri: env.ARTIFACTS_URI, writes });
      const xai = served.explainer
        ? new XaiJob({
            explainer: served.explainer,
            store: this.#o.store,
            artifactsUri: env.ARTIFACTS_URI,
            writes,
            classNames: source.classNames,
            outputNames: model.info.outputNames,
            log: this.#o.log,
            testRun: false,
          })
        : undefined;
      const results: ImageResult[] = [];
      const started = performance.now();
      const stats = await processImages(memory, model, task, source, {
        batchSize: items.length,
        decodeConcurrency: Math.min(items.length, 4),
        xai,
        onResult: (r) => {
          results[r.image_index] = r;
        },
      });
      await writes.flush();
      this.onBatch?.(target, items.length);
      const total = performance.now() - started;
      const postprocess = Math.max(0, total - stats.inferenceMs - stats.preprocessMs / Math.min(items.length, 4)) / items.length;
      return await Promise.all(
        results.map(async (result): Promise<Answer> => {
          const answer: Answer = {
            result,
            preprocess_ms: result.timings?.preprocess_ms ?? 0,
            inference_time_ms: result.timings?.inference_ms ?? 0,
            postprocess_ms: postprocess,
          };
          if (result.mask_path) {
            answer.mask_png_base64 = (await readFile(fileURLToPath(result.mask_path))).toString('base64');
            answer.result = { ...answer.result, mask_path: null };
          }
          // The explanation's overlay comes back in the answer (its scratch files are deleted).
          if (result.xai) {
            const { heatmap_path: heatmap, map_path: _map, ...rest } = result.xai;
            answer.result = { ...answer.result, xai: { ...rest, heatmap_jpeg_base64: (await readFile(fileURLToPath(heatmap))).toString('base64') } as never };
          }
          return answer;
        }),
      );
    } finally {
      // Only semantic masks and explanations are written there.
      if (target.task === 'semantic_segmentation' || served.explainer) await rm(scratch, { recursive: true, force: true });
    }
  }
}
