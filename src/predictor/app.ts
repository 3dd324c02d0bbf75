// The predictor's HTTP API: POST /api/v1/predict with a JSON body (`image_url` or `image_base64`)
// or the image itself as the body (`Content-Type: image/*`, the other fields in the query). The
// model is a registered one (`model`: name@version, name:stage, name) or a `checkpoint_path` with
// its `task_type`. The same tokens as the REST API; the same storage allow-list.
import express, { type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import { ModelRefField, StorageUriField, TaskType } from '../contract/index.ts';
import type { Authenticator } from '../controller/auth/authenticator.ts';
import type { StoragePolicy } from '../controller/auth/storage-policy.ts';
import type { ModelStore } from '../db/model-store.ts';
import { HttpError, validationError } from '../http/errors.ts';
import type { Logger } from '../http/logger.ts';
import { metricsRoutes } from '../http/metrics.ts';
import { errorHandler, healthRoutes, parseOr, rejectNulCharacters, requestContext } from '../http/plumbing.ts';
import type { Prediction, Predictor } from './predictor.ts';
import { ResultCache } from './result-cache.ts';

export interface PredictorAppDeps {
  predictor: Predictor;
  auth: Authenticator;
  models: ModelStore;
  policy: StoragePolicy;
  log: Logger;
  ready: () => Promise<void>;
  /** The largest image accepted (KINFER_PREDICT_MAX_IMAGE_BYTES). */
  maxImageBytes: number;
  /** Predictions kept for repeated requests (KINFER_PREDICT_CACHE_ENTRIES; 0: none). */
  cacheEntries?: number;
}

const num = (schema: z.ZodNumber) => z.preprocess((v) => (typeof v === 'string' && v !== '' ? Number(v) : v), schema);

export const PredictRequest = z
  .object({
    model: ModelRefField.optional(),
    checkpoint_path: StorageUriField.optional(),
    task_type: TaskType.optional(),
    image_url: StorageUriField.optional(),
    image_base64: z.string().min(1).optional(),
    conf: num(z.number().min(0).max(1)).optional(),
    iou: num(z.number().gt(0).max(1)).optional(),
    max_det: num(z.number().int().min(1).max(10_000)).optional(),
  })
  .strict();

export function createPredictorApp(deps: PredictorAppDeps): express.Express {
  const cache = new ResultCache<Prediction>(deps.cacheEntries ?? 1000);
  const app = express();
  app.disable('x-powered-by');
  app.use(requestContext(deps.log));
  metricsRoutes(app, 'predictor');
  healthRoutes(app, deps.ready);
  app.use('/api/v1', async (req: Request, res: Response, next: NextFunction) => {
    try {
      req.principal = await deps.auth.authenticate(req.header('authorization'));
      next();
    } catch (err) {
      if (err instanceof HttpError && err.status === 401) res.setHeader('www-authenticate', 'Bearer realm="kinfer"');
      next(err);
    }
  });
  // The body base64 adds a third; the raw image body is taken as it is.
  app.use(express.json({ limit: Math.ceil(deps.maxImageBytes * 1.4) + 4096 }));
  app.use(express.raw({ type: 'image/*', limit: deps.maxImageBytes }));
  app.use(rejectNulCharacters('validation_error'));

  app.post('/api/v1/predict', async (req, res) => {
    const raw = Buffer.isBuffer(req.body) ? req.body : undefined;
    const body = parseOr(PredictRequest, raw ? req.query : req.body, 'validation_error', 'prediction request');
    const problems: Array<{ field: string; message: string }> = [];
    const images = [raw, body.image_url, body.image_base64].filter((x) => x !== undefined).length;
    if (images !== 1) problems.push({ field: 'image', message: 'send exactly one image: the body (Content-Type image/*), image_url or image_base64' });
    if ((body.model === undefined) === (body.checkpoint_path === undefined))
      problems.push({ field: 'model', message: 'name a model, or a checkpoint_path, not both' });
    if (body.checkpoint_path !== undefined && body.task_type === undefined) problems.push({ field: 'task_type', message: 'is required with checkpoint_path' });
    if (problems.length > 0) throw validationError(problems);

    let checkpoint = body.checkpoint_path;
    let task = body.task_type;
    let version: string | null = null;
    if (body.model !== undefined) {
      const entry = await deps.models.resolve(body.model);
      if (typeof entry === 'string') throw validationError([{ field: 'model', message: entry }]);
      [checkpoint, task, version] = [entry.checkpoint_path, entry.task_type as TaskType, entry.version];
      if (body.task_type !== undefined && body.task_type !== task) throw validationError([{ field: 'task_type', message: `${body.model} serves ${task}` }]);
    }
    for (const [field, uri] of [
      ['checkpoint_path', checkpoint],
      ['image_url', body.image_url],
    ] as const) {
      const refused = uri === undefined ? undefined : deps.policy.refusal(uri);
      if (refused) throw validationError([{ field: body.model && field === 'checkpoint_path' ? 'model' : field, message: refused }]);
    }
    const imageField = raw ? '(body)' : body.image_url ? 'image_url' : 'image_base64';
    let bytes: Uint8Array;
    if (raw) bytes = raw;
    else if (body.image_base64 !== undefined) bytes = Buffer.from(body.image_base64, 'base64');
    else {
      try {
        bytes = await deps.predictor.read(body.image_url!);
      } catch (err) {
        if ((err as { code?: string }).code === 'OBJECT_NOT_FOUND')
          throw validationError([{ field: 'image_url', message: `no such object: ${body.image_url}` }]);
        throw err;
      }
    }
    if (bytes.length > deps.maxImageBytes) throw new HttpError('payload_too_large', `the image is over ${deps.maxImageBytes} bytes`);
    if (bytes.length === 0) throw validationError([{ field: imageField, message: 'is empty (or not base64)' }]);

    // The image is named as a job would name it: by its URL, or `upload`.
    const name = body.image_url ?? 'upload';
    const key = ResultCache.key(bytes, checkpoint, task, name, body.conf, body.iou, body.max_det);
    let prediction = cache.get(key);
    const cached = prediction !== undefined;
    if (!prediction) {
      try {
        prediction = await deps.predictor.predict({
          checkpointPath: checkpoint!,
          task: task!,
          image: { bytes, name },
          conf: body.conf,
          iou: body.iou,
          maxDet: body.max_det,
        });
      } catch (err) {
        // A model that cannot be loaded or does not fit its task is the request's problem.
        const code = (err as { code?: string }).code;
        if (code === 'MODEL_NOT_ONNX' || code === 'MODEL_METADATA_INVALID' || code === 'OBJECT_NOT_FOUND') {
          throw validationError([{ field: body.model ? 'model' : 'checkpoint_path', message: (err as Error).message }]);
        }
        throw err;
      }
      if (prediction.result.error === null) cache.set(key, prediction);
    }
    if (prediction.result.error !== null)
      throw validationError([{ field: raw ? '(body)' : body.image_url ? 'image_url' : 'image_base64', message: prediction.result.error }]);
    res.json({
      ...prediction.result,
      ...(prediction.mask_png_base64 ? { mask_png_base64: prediction.mask_png_base64 } : {}),
      model: body.model ?? checkpoint,
      model_version: version,
      inference_time_ms: prediction.inference_time_ms,
      preprocess_ms: prediction.preprocess_ms,
      postprocess_ms: prediction.postprocess_ms,
      load_ms: prediction.load_ms,
      cached,
    });
  });

  app.use((_req, _res) => {
    throw new HttpError('not_found', 'no such endpoint');
  });
  app.use(errorHandler());
  return app;
}
