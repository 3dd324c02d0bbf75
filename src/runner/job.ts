// One job from start to done: load the model (checked against the task), open the inputs, run the
// task (predict, accumulate metrics), write artifacts, and report. Returns the done payload; the
// caller sends it and sets the exit code.
import { once } from 'node:events';
import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import {
  ARTIFACT_NAMES,
  jobArtifactsUri,
  jobKindOf,
  joinStorageUri,
  RESULTS_SCHEMA_VERSION,
  type DonePayload,
  type JobTimings,
  type ResultsFile,
  type RunnerEnv,
} from '../contract/index.ts';
import { BackgroundWrites } from './io/background-writes.ts';

import type { ObjectStore } from './io/object-store.ts';
import { explainerOf, loadModel } from './model/load-model.ts';
import type { SampleSource } from './pipeline/inputs.ts';
import { committedIn, readParts, shardRange } from './pipeline/parts.ts';
import { yieldToInference } from './pipeline/yield-to-inference.ts';
import { processImages } from './pipeline/process-images.ts';
import { useJpegDecoder } from './image/decode-rgb.ts';
import { JobReporter, type ProgressSink } from './pipeline/reporter.ts';
import { candidateColumnsFor, createTask, openSource } from './tasks/create-task.ts';
import type { VisionTask } from './tasks/vision-task.ts';
import { XaiJob, XaiSummary } from './xai/xai-job.ts';
import { defaultXaiMethod, parseXaiImages, XAI_DEFAULTS } from '../contract/index.ts';

export interface JobContext {
  env: RunnerEnv;
  store: ObjectStore;
  callbacks: ProgressSink;
  log: Logger;
  signal: AbortSignal;
  /** Where this job's artifacts go; default the contract's `{ARTIFACTS_URI}/{kind}/{id}` (kinfer run: its --output-dir). */
  artifactsUri?: string | undefined;
}

/**
 * Runs the job, or this runner's shard of it. Returns the done payload, or null for a shard that
 * finished while others still run (the last shard to finish reports the job).
 */
export async function runJob({ env, store, callbacks, log, signal, artifactsUri }: JobContext): Promise<DonePayload | null> {
  const started = performance.now();
  const jpegDecoder = useJpegDecoder(env.JPEG_DECODER);
  if (env.JPEG_DECODER === 'auto' && jpegDecoder === 'sharp')
    log.warn('libjpeg-turbo does not load here: every JPEG is decoded by sharp (slower, same pixels)');
  const kind = jobKindOf(env.INFERENCE_TYPE);
  const artifacts = artifactsUri ?? jobArtifactsUri(env.ARTIFACTS_URI, kind, env.JOB_ID);

  const sessionOptions = {
    executionProviders: env.EXECUTION_PROVIDERS.split(',')
      .map((p) => p.trim())
      .filter(Boolean),
    intraOpNumThreads: env.INTRA_OP_THREADS ?? availableParallelism(),
    // The arena without the memory pattern's one block: a job's peak memory close to its peak
    // without the arena, its speed close to the pattern's (see SessionOptions.memoryPattern).
    memoryPattern: false,
  };
  const xaiMethod = env.ENABLE_XAI ? (env.XAI_METHOD ?? defaultXaiMethod(env.TASK_TYPE)) : undefined;
  const model = await loadModel(store, env.CHECKPOINT_PATH, {
    ...sessionOptions,
    expectedTask: env.TASK_TYPE,
    xai: xaiMethod ? { method: xaiMethod, targetLayer: env.XAI_TARGET_LAYER } : undefined,
    uint8Input: env.UINT8_INPUT,
    candidateColumns: candidateColumnsFor(env),
    split: { setting: env.SESSIONS },
  });
  if (model.info.warning) log.warn({ provider: model.info.provider }, model.info.warning);
  log.info(
    {
      provider: model.info.provider,
      load_ms: Math.round(model.loadMs),
      input: model.info.inputShape,
      layout: model.inputLayout,
      ...(model.uint8ConversionSite ? { conversion: model.uint8ConversionSite } : {}),
      ...(model.candidateColumns ? { candidate_columns: true } : {}),
      ...(model.sessions.length > 1 ? { sessions: model.sessions.length } : {}),
      classes: model.metadata.classNames.length,
    },
    'model loaded',
  );

  let xai: XaiJob | undefined;
  try {
    const source = await openSource(env, store, model);
    if (env.MAX_IMAGES !== undefined && source.total > env.MAX_IMAGES) throw new TooManyImagesError(source.total, env.MAX_IMAGES);
    const writes = new BackgroundWrites(log);
    const task = createTask(env, { store, model, source, artifactsUri: artifacts, writes });
    if (xaiMethod && model.xai) {
      const explainer = await explainerOf(
        model,
        {
          method: xaiMethod,
          numSamples: env.XAI_NUM_SAMPLES ?? XAI_DEFAULTS.numSamples,
          images: parseXaiImages(env.XAI_IMAGES ?? (kind === 'test_run' ? XAI_DEFAULTS.testRunImages : XAI_DEFAULTS.inferenceImages)),
          target: env.XAI_TARGET,
          llm: env.XAI_LLM_BASE_URL ? { baseUrl: env.XAI_LLM_BASE_URL, model: env.XAI_LLM_MODEL ?? 'default', apiKey: env.XAI_LLM_API_KEY } : undefined,
        },
        sessionOptions,
      );
      xai = new XaiJob({
        explainer,
        store,
        artifactsUri: artifacts,
        writes,
        classNames: source.classNames,
        outputNames: model.info.outputNames,
        log,
        testRun: kind === 'test_run',
      });
      log.info({ method: xaiMethod, target_layer: model.xai.plan.targetLayer ?? null }, 'explaining images');
    }
    const shard = env.SHARD_COUNT > 1 ? { index: env.SHARD_INDEX, count: env.SHARD_COUNT } : undefined;
    const range = shardRange(source.total, env.SHARD_INDEX, env.SHARD_COUNT);
    const committed = await committedIn(store, artifacts, range.from, range.to);
    if (committed.lastPart) {
      // The last part may have been stored without reaching the callback service; storing it again changes nothing.
      log.info({ committed_images: committed.processed, next_index: committed.next, shard: env.SHARD_INDEX }, 'resuming after the images already committed');
      await callbacks.imageResults(committed.lastPart);
    }
    const reporter = new JobReporter({
      callbacks,
      store,
      artifactsUri: artifacts,
      total: source.total,
      shard,
      resumed: committed,
      resultsBatchSize: env.RESULTS_BATCH_SIZE,
      progressEveryImages: env.PROGRESS_EVERY_IMAGES,
      progressIntervalMs: env.PROGRESS_INTERVAL_MS,
    });
    try {
      await reporter.started();
      log.info(
        { total_images: source.total, task: env.TASK_TYPE, ...(shard ? { shard: shard.index, shards: shard.count, from: range.from, to: range.to } : {}) },
        'processing',
      );
      // Every session exists now: the threads they create from here on keep their priority.
      const lowered = yieldToInference(env.PIPELINE_NICE);
      if (lowered > 0) log.debug({ threads: lowered, nice: env.PIPELINE_NICE }, "the runner's own threads yield to inference");
      const processingStarted = performance.now();
      const stats = await processImages(store, model, task, imagesBetween(source, committed.next, range.to), {
        batchSize: env.BATCH_SIZE,
        decodeConcurrency: env.DECODE_CONCURRENCY,
        readConcurrency: env.READ_CONCURRENCY,
        signal,
        onResult: (result, record) => reporter.add(result, record),
        xai,
      });
      if (signal.aborted) throw signal.reason;
      // Visualizations and masks named in the results exist before the job says it is done.
      await writes.flush();
      await reporter.finish();
      if (writes.failed > 0) log.warn({ failed: writes.failed }, 'some visualizations or masks could not be written');
      const processingMs = performance.now() - processingStarted;
      if (shard) {
        const reply = await callbacks.shardDone!(shard.index, { processed_images: reporter.processed, failed_images: reporter.failed, count: shard.count });
        if (!reply.last) {
          log.info({ shard: shard.index, processed: reporter.processed }, 'shard finished; the last shard to finish scores the job');
          return null;
        }
        log.info({ shard: shard.index }, 'every shard finished: scoring the job');
      }
      const scoringStarted = performance.now();
      const scored = await scoreJob(store, artifacts, task, source.total);
      const scoringMs = performance.now() - scoringStarted;
      const timings: JobTimings = {
        total_ms: performance.now() - started,
        model_load_ms: model.loadMs,
        preprocess_ms: stats.preprocessMs,
        inference_ms: stats.inferenceMs,
        images_per_second: processingMs > 0 ? (stats.processed * 1000) / processingMs : 0,
        peak_rss_bytes: process.resourceUsage().maxRSS * 1024,
        scoring_ms: scoringMs,
      };
      const evaluation = scored.metrics;
      // The explanations' faithfulness over the run, beside the other figures.
      if (evaluation && xai) Object.assign(evaluation.overall_metrics, scored.xai);
      const resultsPath = joinStorageUri(artifacts, ARTIFACT_NAMES.results);
      const results: ResultsFile = {
        schema_version: RESULTS_SCHEMA_VERSION,
        job_id: env.JOB_ID,
        kind,
        inference_type: env.INFERENCE_TYPE,
        task_type: env.TASK_TYPE,
        checkpoint_path: env.CHECKPOINT_PATH,
        dataset_path: env.DATASET_PATH ?? null,
        split: env.INFERENCE_TYPE === 'test_run' ? env.SPLIT : null,
        class_names: source.classNames,
        total_images: source.total,
        processed_images: scored.processed,
        failed_images: scored.failed,
        metrics: evaluation,
        timings,
        images_path: scored.imagesPath,
        finished_at: new Date().toISOString(),
      };
      await store.write(resultsPath, `${JSON.stringify(results, null, 2)}\n`, 'application/json');
      log.info(
        {
          processed: scored.processed,
          failed: scored.failed,
          images_per_second: Number(timings.images_per_second.toFixed(1)),
          results_path: resultsPath,
          // Where the memory went (MiB): V8's heap, memory outside it (buffers, native), the peak.
          memory_mib: {
            peak_rss: Math.round(timings.peak_rss_bytes! / 2 ** 20),
            ...Object.fromEntries(Object.entries(process.memoryUsage()).map(([k, v]) => [k, Math.round(v / 2 ** 20)])),
          },
        },
        'job finished',
      );
      return {
        status: 'completed',
        processed_images: scored.processed,
        total_images: source.total,
        failed_images: scored.failed,
        results_path: resultsPath,
        timings,
        metrics: evaluation,
      };
    } catch (err) {
      reporter.abandon();
      throw err;
    }
  } finally {
    await Promise.all(model.sessions.map((s) => s.close()));
    await xai?.close();
  }
}

/**
 * The job's evaluation and images.jsonl from every part, in image order: the same fold whether
 * one runner did everything, a runner resumed, or shards ran side by side.
 */
async function scoreJob(store: ObjectStore, artifacts: string, task: VisionTask<unknown>, total: number) {
  const evaluation = task.newEvaluation();
  const xai = new XaiSummary();
  const imagesPath = joinStorageUri(artifacts, ARTIFACT_NAMES.images);
  const images = await store.openWriter(imagesPath, 'application/x-ndjson');
  let processed = 0;
  let failed = 0;
  let last = -1;
  try {
    for await (const { lines } of readParts(store, artifacts)) {
      for (const { result, record } of lines) {
        // A zombie runner's part that overlaps a later one: each image counts once.
        if (result.image_index <= last) continue;
        last = result.image_index;
        processed++;
        if (result.error !== null) failed++;
        if (evaluation && record !== null) evaluation.absorb(record);
        xai.add(result);
        if (!images.stream.write(`${JSON.stringify(result)}\n`)) await once(images.stream, 'drain');
      }
    }
    images.stream.end();
    await images.done;
  } catch (err) {
    images.done.catch(() => undefined);
    images.stream.destroy();
    throw err;
  }
  if (processed !== total) throw new Error(`the job's parts hold ${processed} of its ${total} images; refusing to score an incomplete run`);
  return { metrics: evaluation?.metrics() ?? null, xai: xai.summary(), processed, failed, imagesPath };
}

/** After the job's done is recorded: the parts are in images.jsonl and the metrics, and go. */
export async function removeParts(store: ObjectStore, artifacts: string): Promise<void> {
  for await (const { uri } of readParts(store, artifacts)) await store.remove(uri);
}

/** The samples with index in [from, to): a shard's range, after what it already committed. */
function imagesBetween(source: SampleSource, from: number, to: number): SampleSource {
  return {
    ...source,
    async *samples() {
      for await (const sample of source.samples()) {
        if (sample.index >= to) return;
        if (sample.index >= from) yield sample;
      }
    },
  };
}

/** A job over the installation's per-job image limit: refused before any image is read. */
class TooManyImagesError extends Error {
  readonly code = 'TOO_MANY_IMAGES';
  constructor(total: number, max: number) {
    super(`the job has ${total} images; one job may have at most ${max} here (KINFER_MAX_IMAGES_PER_JOB)`);
    this.name = 'TooManyImagesError';
  }
}
