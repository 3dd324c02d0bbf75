// The predictor's HTTP API (README "Online predictions"):
//   POST /api/v1/predict         one image: JSON (image_url | image_base64), the image as the body, or multipart
//   POST /api/v1/predict/batch   up to KINFER_PREDICT_MAX_BATCH_IMAGES images; a per-image error entry, the rest answered
//   GET  /api/v1/models/{name}/info, POST /api/v1/models/{name}/reload
//   /v2/...                      the Open Inference Protocol (./oip.ts)
// The model is a registered one (`model`: name@version, name:stage, name; or `model` + `version`)
// or a `checkpoint_path` with its `task_type`. The same tokens as the REST API; the same storage
// allow-list.
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Authenticator } from '../controller/auth/authenticator.ts';
import type { StoragePolicy } from '../controller/auth/storage-policy.ts';
import type { ModelStore } from '../db/model-store.ts';
import { CLASS_SCORE_METHODS, defaultXaiMethod } from '../contract/index.ts';
import { HttpError, validationError, type FieldProblem } from '../http/errors.ts';
import type { Logger } from '../http/logger.ts';
import { metricsRoutes } from '../http/metrics.ts';
import { errorHandler, healthRoutes, noSuchEndpoint, rejectNulCharacters, requestContext } from '../http/plumbing.ts';
import { predictorMetrics } from './metrics.ts';
import { InFlightLimit } from './in-flight.ts';
import { oipRoutes } from './oip.ts';
import type { Prediction, Predictor, ServedModelInfo } from './predictor.ts';
import { ONE_IMAGE, parseBatch, parsePredict, type ImageInput, type ModelFields } from './requests.ts';
import { checkpointTarget, ModelResolver, type Resolved } from './resolver.ts';
import { cacheKey, type PredictionCache } from './result-cache.ts';

export interface PredictorAppDeps {
  predictor: Predictor;
  auth: Authenticator;
  models: ModelStore;
  policy: StoragePolicy;
  log: Logger;
  ready: () => Promise<void>;
  /** The largest image accepted (KINFER_PREDICT_MAX_IMAGE_BYTES). */
  maxImageBytes: number;
  /** Images in one batch request (KINFER_PREDICT_MAX_BATCH_IMAGES). */
  maxBatchImages?: number;
  cache: PredictionCache;
  /** How long registry reads are kept (KINFER_PREDICT_REGISTRY_TTL_MS). */
  registryTtlMs?: number;
  /** This replica's id in reload announcements (the others reload what it was asked to). */
  replicaId?: string;
  /** Images held at once, past which requests are refused with 503 (KINFER_PREDICT_MAX_IN_FLIGHT; 0: no limit). */
  maxInFlight?: number;
}

export interface PredictorApp {
  app: express.Express;
  /** Reloads every warm version of a registered name (SIGHUP reloads every warm name). */
  reload(name: string): Promise<unknown[]>;
  /** Stops taking requests: /readyz and /v2/health/ready answer 503 (SIGTERM). */
  drain(): void;
}

/** Model problems found while loading: the request's to fix, not the service's. */
const MODEL_PROBLEMS = new Set(['MODEL_NOT_ONNX', 'MODEL_METADATA_INVALID', 'OBJECT_NOT_FOUND', 'MODEL_LOAD_FAILED']);

export function createPredictorApp(deps: PredictorAppDeps): PredictorApp {
  const resolver = new ModelResolver(deps.models, deps.registryTtlMs ?? 2000);
  const maxBatchImages = deps.maxBatchImages ?? 32;
  const cacheStats = new Map<string, { hits: number; misses: number }>();
  const inFlight = new InFlightLimit(deps.maxInFlight ?? 0);
  let draining = false;
  const app = express();
  app.disable('x-powered-by');
  app.use(requestContext(deps.log));
  const metrics = predictorMetrics(metricsRoutes(app, 'predictor'));
  deps.predictor.onBatch = (t, size) => metrics.batchSize.observe({ model: t.name ?? t.checkpointPath, version: t.version ?? '' }, size);

  const ready = async () => {
    if (draining) throw new Error('shutting down');
    await deps.ready();
  };
  healthRoutes(app, ready);

  const authenticate = async (req: Request, res: Response, next: NextFunction) => {
    try {
      req.principal = await deps.auth.authenticate(req.header('authorization'));
      next();
    } catch (err) {
      if (err instanceof HttpError && err.status === 401) res.setHeader('www-authenticate', 'Bearer realm="kinfer"');
      next(err);
    }
  };
  app.use('/api/v1', authenticate);
  // The body base64 adds a third; the raw image body is taken as it is.
  app.use(express.json({ limit: Math.ceil(deps.maxImageBytes * 1.4 * maxBatchImages) + 65_536 }));
  app.use(express.raw({ type: 'image/*', limit: deps.maxImageBytes }));
  app.use(rejectNulCharacters('validation_error'));

  /** The model a request names, allowed by the storage policy. */
  const resolve = async (fields: ModelFields, req: Request): Promise<Resolved> => {
    const problems: FieldProblem[] = [];
    if ((fields.model === undefined) === (fields.checkpoint_path === undefined))
      problems.push({ field: 'model', message: 'name a model, or a checkpoint_path, not both' });
    if (fields.checkpoint_path !== undefined && fields.task_type === undefined)
      problems.push({ field: 'task_type', message: 'is required with checkpoint_path' });
    if (fields.version !== undefined && (fields.model === undefined || /[@:]/.test(fields.model)))
      problems.push({ field: 'version', message: 'goes with a model name (not name@version or name:stage)' });
    if (problems.length > 0) throw validationError(problems);
    let resolved: Resolved;
    if (fields.model !== undefined) {
      const ref = fields.version !== undefined ? `${fields.model}@${fields.version}` : fields.model;
      const found = await resolver.registered(ref, (h) => req.header(h));
      if (typeof found === 'string') throw new HttpError('not_found', found, { fields: [{ field: fields.version ? 'version' : 'model', message: found }] });
      if (fields.task_type !== undefined && fields.task_type !== found.target.task)
        throw validationError([{ field: 'task_type', message: `${fields.model} serves ${found.target.task}` }]);
      resolved = found;
    } else resolved = checkpointTarget(fields.checkpoint_path!, fields.task_type!);
    const refused = deps.policy.refusal(resolved.target.checkpointPath);
    if (refused) throw validationError([{ field: fields.model ? 'model' : 'checkpoint_path', message: refused }]);
    if (fields.xai_target_layer !== undefined && !fields.xai) throw validationError([{ field: 'xai_target_layer', message: 'goes with xai' }]);
    if (fields.xai) {
      const task = resolved.target.task;
      const method = fields.xai === true ? defaultXaiMethod(task) : fields.xai;
      if ((CLASS_SCORE_METHODS.includes(method) || method === 'attention') && task !== 'image_classification')
        throw validationError([
          { field: 'xai', message: `${method} explains a class score: it fits image_classification, not ${task} (eigencam explains any task)` },
        ]);
      resolved = { ...resolved, target: { ...resolved.target, xai: { method, targetLayer: fields.xai_target_layer } } };
    }
    return resolved;
  };

  /** An image's bytes: sent, or read from storage the policy allows. */
  const bytesOf = async (image: ImageInput): Promise<Uint8Array> => {
    let bytes: Uint8Array;
    if ('bytes' in image) bytes = image.bytes;
    else {
      const refused = deps.policy.refusal(image.uri);
      if (refused) throw validationError([{ field: image.field, message: refused }]);
      try {
        bytes = await deps.predictor.read(image.uri);
      } catch (err) {
        if ((err as { code?: string }).code === 'OBJECT_NOT_FOUND') throw validationError([{ field: image.field, message: `no such object: ${image.uri}` }]);
        throw err;
      }
    }
    if (bytes.length > deps.maxImageBytes) throw new HttpError('payload_too_large', `the image (${image.field}) is over ${deps.maxImageBytes} bytes`);
    if (bytes.length === 0) throw validationError([{ field: image.field, message: 'is empty (or not base64)' }]);
    return bytes;
  };

  /** One image's prediction, from the cache or the model; a model that cannot serve is the request's problem. */
  const predictOne = async (resolved: Resolved, fields: ModelFields, image: ImageInput, bytes: Uint8Array): Promise<Prediction & { cached: boolean }> => {
    const { target, modelKey } = resolved;
    const xai = target.xai ? `${target.xai.method}:${target.xai.targetLayer ?? ''}` : '';
    const key = cacheKey(modelKey, bytes, target.checkpointPath, target.task, image.name, fields.conf, fields.iou, fields.max_det, xai);
    const stats = cacheStats.get(modelKey) ?? { hits: 0, misses: 0 };
    cacheStats.set(modelKey, stats);
    const hit = await deps.cache.get(key);
    metrics.cache.inc({ model: modelKey, result: hit ? 'hit' : 'miss' });
    if (hit) {
      stats.hits++;
      return { ...(JSON.parse(hit) as Prediction), cached: true };
    }
    stats.misses++;
    const labels = { model: target.name ?? target.checkpointPath, version: target.version ?? '' };
    const end = metrics.latency.startTimer(labels);
    let prediction: Prediction;
    try {
      prediction = await deps.predictor.predict({ target, image: { bytes, name: image.name }, conf: fields.conf, iou: fields.iou, maxDet: fields.max_det });
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'XAI_UNSUPPORTED_MODEL') {
        const field = (err as { field?: string }).field === 'xai_config.target_layer' ? 'xai_target_layer' : 'xai';
        throw validationError([{ field, message: (err as Error).message }]);
      }
      if (code && MODEL_PROBLEMS.has(code)) throw validationError([{ field: fields.model ? 'model' : 'checkpoint_path', message: (err as Error).message }]);
      throw err;
    }
    end();
    metrics.queue.observe(labels, prediction.queue_ms / 1000);
    if (prediction.result.error === null) await deps.cache.set(key, JSON.stringify(prediction));
    return { ...prediction, cached: false };
  };

  const present = (p: Prediction & { cached: boolean }, fields: ModelFields, resolved: Resolved) => ({
    ...p.result,
    ...(p.mask_png_base64 ? { mask_png_base64: p.mask_png_base64 } : {}),
    model: fields.model ?? resolved.target.checkpointPath,
    model_version: resolved.target.version ?? null,
    inference_time_ms: p.inference_time_ms,
    preprocess_ms: p.preprocess_ms,
    postprocess_ms: p.postprocess_ms,
    queue_ms: p.queue_ms,
    batch_size: p.batch_size,
    load_ms: p.load_ms,
    cached: p.cached,
  });

  app.post('/api/v1/predict', async (req, res) => {
    const { fields, images } = await parsePredict(req, deps.maxImageBytes);
    if (images.length !== 1) throw validationError([{ field: 'image', message: ONE_IMAGE }]);
    await inFlight.hold(1, async () => {
      const resolved = await resolve(fields, req);
      const image = images[0]!;
      const prediction = await predictOne(resolved, fields, image, await bytesOf(image));
      if (prediction.result.error !== null) throw validationError([{ field: image.field, message: prediction.result.error }]);
      res.setHeader('x-model-version', resolved.target.version ?? '');
      res.json(present(prediction, fields, resolved));
    });
  });

  app.post('/api/v1/predict/batch', async (req, res) => {
    const { fields, images } = await parseBatch(req, deps.maxImageBytes, maxBatchImages);
    if (images.length === 0) throw validationError([{ field: 'images', message: 'send at least one image (images: [...], or multipart files)' }]);
    await inFlight.hold(images.length, () => predictBatch(req, res, fields, images));
  });

  const predictBatch = async (req: Request, res: Response, fields: ModelFields, images: ImageInput[]) => {
    const resolved = await resolve(fields, req);
    // Every image is answered: a prediction, or its own error entry; the batch goes on.
    // An image that cannot be read or decoded gets its error entry (as in a job's results); a model
    // that cannot serve fails the request.
    const predictions = await Promise.all(
      images.map(async (image): Promise<Record<string, unknown>> => {
        let bytes: Uint8Array;
        try {
          bytes = await bytesOf(image);
        } catch (err) {
          if (!(err instanceof HttpError) || err.status >= 500) throw err;
          const problem = (err.body.fields as FieldProblem[] | undefined)?.[0];
          return { image_path: image.name, error: problem ? `${problem.field}: ${problem.message}` : err.message };
        }
        return present(await predictOne(resolved, fields, image, bytes), fields, resolved);
      }),
    );
    res.setHeader('x-model-version', resolved.target.version ?? '');
    res.json({ model: fields.model ?? resolved.target.checkpointPath, model_version: resolved.target.version ?? null, predictions });
  };

  const reloadNow = async (name: string) => {
    resolver.forget(name);
    try {
      const reloaded = await deps.predictor.reload(name, (version) => resolver.version(name, version));
      for (const m of await deps.models.list({ name })) await deps.cache.invalidate(`${m.name}@${m.version}`);
      metrics.reloads.inc({ model: name, outcome: 'ok' });
      return reloaded;
    } catch (err) {
      metrics.reloads.inc({ model: name, outcome: 'failed' });
      throw err;
    }
  };

  // One reload of a name at a time, and at most one more waiting: every reload asked while one runs
  // (a flapping LISTEN connection catching up each time, SIGHUPs, notices, POSTs) is that next one,
  // which starts after it and so reads the newest file. Each caller gets its outcome.
  const running = new Map<string, Promise<unknown>>();
  const waiting = new Map<string, Promise<ServedModelInfo[]>>();
  const reload = (name: string): Promise<ServedModelInfo[]> => {
    const queued = waiting.get(name);
    if (queued) return queued;
    const next = (running.get(name) ?? Promise.resolve())
      .catch(() => undefined)
      .then(() => {
        waiting.delete(name);
        const run = reloadNow(name);
        running.set(name, run);
        return run.finally(() => {
          if (running.get(name) === run) running.delete(name);
        });
      });
    waiting.set(name, next);
    return next;
  };

  // A reload asked of one replica is announced to every other one (Postgres NOTIFY; main.ts listens).
  app.post('/api/v1/models/:name/reload', async (req, res) => {
    if (req.principal?.role === 'viewer') throw new HttpError('forbidden', 'a viewer may not reload models');
    const name = String(req.params.name);
    if ((await deps.models.list({ name })).length === 0) throw new HttpError('not_found', `no registered model ${name}`);
    try {
      const reloaded = await reload(name);
      if (deps.replicaId) await deps.models.announceReload(name, deps.replicaId);
      res.json({ name, reloaded });
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code && MODEL_PROBLEMS.has(code)) throw validationError([{ field: 'model', message: `the old version keeps serving: ${(err as Error).message}` }]);
      throw err;
    }
  });

  app.get('/api/v1/models/:name/info', async (req, res) => {
    const name = String(req.params.name);
    const registered = await deps.models.list({ name });
    if (registered.length === 0) throw new HttpError('not_found', `no registered model ${name}`);
    const warm = deps.predictor.info(name);
    res.json({
      name,
      versions: registered.map((m) => {
        // A version may be warm in several sessions: predictions, with explanations, v2 tensors.
        const sessions = warm.filter((w) => w.version === m.version);
        const served = sessions[0];
        const c = cacheStats.get(`${m.name}@${m.version}`) ?? { hits: 0, misses: 0 };
        return {
          version: m.version,
          stage: m.stage,
          warm: served !== undefined,
          loaded_at: served?.loaded_at ?? null,
          last_reloaded: served?.last_reloaded ?? null,
          inference_count: sessions.reduce((n, s) => n + s.inference_count, 0),
          mean_latency_ms: served?.mean_latency_ms ?? null,
          p95_latency_ms: served?.p95_latency_ms ?? null,
          in_flight: served?.in_flight ?? 0,
          cache_hits: c.hits,
          cache_misses: c.misses,
          cache_hit_rate: c.hits + c.misses > 0 ? c.hits / (c.hits + c.misses) : null,
          sessions: sessions.map((s) => ({ serves: s.serves, loaded_at: s.loaded_at, last_reloaded: s.last_reloaded, inference_count: s.inference_count })),
        };
      }),
    });
  });

  oipRoutes(app, { predictor: deps.predictor, resolver, policy: deps.policy, authenticate, ready, inFlight });

  app.use(noSuchEndpoint());
  app.use((err: unknown, _req: Request, _res: Response, next: NextFunction) => {
    metrics.errors.inc({ reason: err instanceof HttpError ? String(err.body.error) : 'internal_error' });
    next(err);
  });
  app.use(errorHandler());
  return {
    app,
    reload,
    drain: () => {
      draining = true;
    },
  };
}
