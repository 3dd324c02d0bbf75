// The REST API, base /api/v1. A job is validated (400 naming each bad field, including a model or
// dataset that does not exist), stored as pending, and handed to the reconciler.
import express, { type Request } from 'express';
import { z } from 'zod';
import { joinStorageUri, type JobKind } from '../../contract/index.ts';
import type { Job, JobStore } from '../../db/job-store.ts';
import type { Logger } from '../../http/logger.ts';
import { metricsRoutes } from '../../http/metrics.ts';
import { HttpError, type FieldProblem } from '../../http/errors.ts';
import { errorHandler, healthRoutes, parseOr, requestContext } from '../../http/plumbing.ts';
import type { StorageClient } from '../../storage/object-store.ts';
import type { Tier } from '../tier.ts';
import { checkExportable, EXPORT_CONTENT_TYPES, exportChunks, ExportQuery } from './exports.ts';
import { CreateInferenceJob, CreateTestRun, ImagesQuery, ListQuery, PageQuery } from './requests.ts';

export interface ControllerAppDeps {
  store: JobStore;
  storage: StorageClient;
  log: Logger;
  ready: () => Promise<void>;
  tier: Tier;
}

const HIDDEN = new Set(['executor', 'executor_ref']);
const SEGMENT: Record<JobKind, string> = { test_run: 'test-runs', inference_job: 'inference-jobs' };

/** A job row as the API shows it (executor internals left out). */
export function present(job: Job): Record<string, unknown> {
  return Object.fromEntries(Object.entries(job).filter(([key]) => !HIDDEN.has(key)));
}

const JobId = z.uuid();

export function createControllerApp(deps: ControllerAppDeps): express.Express {
  const { store, storage, log } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.use(requestContext(log));
  metricsRoutes(app, 'controller');
  app.use(express.json({ limit: '2mb' }));
  healthRoutes(app, deps.ready);

  const found = async (kind: JobKind, req: Request): Promise<Job> => {
    const id = String(req.params.id);
    const job = JobId.safeParse(id).success ? await store.get(kind, id) : null;
    if (!job) throw new HttpError('not_found', `${kind === 'test_run' ? 'test run' : 'inference job'} ${id} not found`);
    req.log = req.log.child({ job_id: job.id });
    return job;
  };

  /** Refuses paths that do not exist in storage, naming the field. */
  const mustExist = async (checks: Array<{ field: string; uri: string; what: 'object' | 'prefix' }>) => {
    const missing: FieldProblem[] = [];
    await Promise.all(
      checks.map(async ({ field, uri, what }) => {
        const ok = what === 'object' ? await storage.objectExists(uri) : await storage.prefixExists(uri);
        if (!ok) missing.push({ field, message: `${what === 'object' ? 'no such object' : 'no such folder or prefix'}: ${uri}` });
      }),
    );
    if (missing.length > 0) {
      throw new HttpError('validation_error', missing.map((m) => `${m.field}: ${m.message}`).join('; '), { fields: missing });
    }
  };

  const cancel = async (kind: JobKind, req: Request) => {
    const job = await found(kind, req);
    const outcome = await store.cancel(kind, job.id);
    if (outcome.outcome === 'terminal') {
      throw new HttpError('conflict', `cannot cancel: the job is already ${outcome.status}`, { status: outcome.status });
    }
    await deps.tier.onCancelled(kind, job);
    req.log.info('job cancelled');
    return present((await store.get(kind, job.id))!);
  };

  const created = async (kind: JobKind, job: Job, req: Request, res: express.Response) => {
    const log = req.log.child({ job_id: job.id });
    try {
      await deps.tier.onCreated(kind, job);
    } catch (err) {
      // Never leave a pending job that nothing will run.
      await store.failIfActive(kind, job.id, `could not hand the job to the executor: ${(err as Error).message}`);
      log.error({ err }, 'job could not be handed to the executor');
      throw new HttpError('executor_unavailable', `the job was not started: ${(err as Error).message}`, { id: job.id });
    }
    log.info(`${kind === 'test_run' ? 'test run' : 'inference job'} created`);
    res.status(201).location(`/api/v1/${SEGMENT[kind]}/${job.id}`).json(present((await store.get(kind, job.id)) ?? job));
  };

  const router = express.Router();

  // The same three routes for both kinds: list (newest first), one, cancel.
  for (const kind of ['test_run', 'inference_job'] as const) {
    router.get(`/${SEGMENT[kind]}`, async (req, res) => {
      const q = parseOr(ListQuery, req.query, 'validation_error', 'query');
      const page = await store.list(kind, q);
      res.json({ total_count: page.total, skip: q.skip, limit: q.limit, items: page.items.map(present) });
    });
    router.get(`/${SEGMENT[kind]}/:id`, async (req, res) => {
      res.json(present(await found(kind, req)));
    });
    router.post(`/${SEGMENT[kind]}/:id/cancel`, async (req, res) => {
      res.json(await cancel(kind, req));
    });
    router.get(`/${SEGMENT[kind]}/:id/export`, async (req, res) => {
      const { format } = parseOr(ExportQuery, req.query, 'validation_error', 'query');
      const job = await found(kind, req);
      checkExportable(format, job.task_type);
      const ext = format === 'csv' ? 'csv' : 'json';
      res.status(200).type(EXPORT_CONTENT_TYPES[format]).attachment(`${SEGMENT[kind]}-${job.id}-${format}.${ext}`);
      for await (const chunk of exportChunks(format, job.task_type, store.allImages(kind, job.id))) {
        if (!res.write(chunk)) await new Promise((resolve) => res.once('drain', resolve));
      }
      res.end();
    });
  }

  router.post('/test-runs', async (req, res) => {
    const body = parseOr(CreateTestRun, req.body, 'validation_error', 'test run');
    await mustExist([
      { field: 'checkpoint_path', uri: body.checkpoint_path, what: 'object' },
      { field: 'dataset_path', uri: body.dataset_path, what: 'prefix' },
    ]);
    await mustExist([{ field: 'dataset_split', uri: joinStorageUri(body.dataset_path, body.dataset_split), what: 'prefix' }]);
    const run = await store.createTestRun({
      checkpoint_path: body.checkpoint_path,
      dataset_path: body.dataset_path,
      dataset_split: body.dataset_split,
      task_type: body.task_type,
      name: body.name ?? null,
      training_job_id: body.training_job_id ?? null,
      enable_xai: body.enable_xai,
      xai_method: body.xai_method ?? null,
      xai_config: null,
    });
    await created('test_run', run, req, res);
  });

  router.get('/test-runs/:id/images', async (req, res) => {
    const q = parseOr(ImagesQuery, req.query, 'validation_error', 'query');
    const run = await found('test_run', req);
    const page = await store.listTestImages(run.id, { skip: q.skip, limit: q.limit, isCorrect: q.filter_correct });
    res.json({
      total_count: page.counts.total,
      correct_count: page.counts.correct,
      incorrect_count: page.counts.incorrect,
      error_count: page.counts.total - page.counts.correct - page.counts.incorrect,
      filtered_count: page.filteredTotal,
      skip: q.skip,
      limit: q.limit,
      images: page.items,
    });
  });

  router.post('/inference-jobs', async (req, res) => {
    const body = parseOr(CreateInferenceJob, req.body, 'validation_error', 'inference job');
    const input = body.input_config;
    await mustExist([
      { field: 'checkpoint_path', uri: body.checkpoint_path, what: 'object' },
      ...('image_path' in input ? [{ field: 'input_config.image_path', uri: input.image_path, what: 'object' as const }] : []),
      ...('dataset_path' in input ? [{ field: 'input_config.dataset_path', uri: input.dataset_path, what: 'prefix' as const }] : []),
    ]);
    const job = await store.createInferenceJob({
      checkpoint_path: body.checkpoint_path,
      task_type: body.task_type,
      inference_type: body.inference_type,
      input_config: input,
      name: body.name ?? null,
      enable_xai: body.enable_xai,
      xai_method: body.xai_method ?? null,
      xai_config: null,
    });
    await created('inference_job', job, req, res);
  });

  router.get('/inference-jobs/:id/results', async (req, res) => {
    const q = parseOr(PageQuery, req.query, 'validation_error', 'query');
    const job = await found('inference_job', req);
    const page = await store.listInferenceResults(job.id, q);
    res.json({ total_count: page.total, skip: q.skip, limit: q.limit, results: page.items });
  });

  app.use('/api/v1', router);
  app.use((_req, _res) => {
    throw new HttpError('not_found', 'no such endpoint');
  });
  app.use(errorHandler());
  return app;
}
