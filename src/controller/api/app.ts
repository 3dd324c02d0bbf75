// The REST API, base /api/v1. A job request goes through the one admission (400 naming each field
// at fault, including a model or dataset that does not exist or does not fit), is stored as
// pending, and is handed to the tier that runs jobs.
import express, { type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import type { JobKind, TaskType } from '../../contract/index.ts';
import type { Job, JobStore } from '../../db/job-store.ts';
import type { TokenStore } from '../../db/token-store.ts';
import type { Authenticator } from '../auth/authenticator.ts';
import type { SubmitLimiter } from '../auth/limits.ts';
import { canSee, visibilityOf } from '../auth/principal.ts';
import { callerOf, requireRole } from './caller.ts';
import { tokenRoutes } from './tokens.ts';
import type { Logger } from '../../http/logger.ts';
import { metricsRoutes } from '../../http/metrics.ts';
import { HttpError, validationError } from '../../http/errors.ts';
import {
  errorHandler,
  fieldProblems,
  healthRoutes,
  noSuchEndpoint,
  parseOr,
  rejectNulCharacters,
  requestContext,
  requireJsonBodies,
} from '../../http/plumbing.ts';
import { StorageUnavailableError, type Admission } from '../admission/admission.ts';
import { definitionFromInferenceRequest, definitionFromTestRunRequest, type JobDefinition } from '../job-mapping.ts';
import type { Tier } from '../tier.ts';
import type { JobEventHub } from '../../db/job-events.ts';
import type { StorageClient } from '../../storage/object-store.ts';
import { artifactRoutes } from './artifacts.ts';
import { compareTestRuns, incomparable } from './compare.ts';
import { docsPage, openApiDocument } from './openapi.ts';
import { dashboardRoutes, predictProxy } from '../dashboard.ts';
import type { TestRun } from '../../db/entities.ts';
import { sendStream } from '../../http/send-stream.ts';
import { streamJobEvents } from './events.ts';
import { checkExportable, EXPORT_CONTENT_TYPES, exportChunks, ExportQuery } from './exports.ts';
import { modelRoutes } from './models.ts';
import type { ModelStore } from '../../db/model-store.ts';
import { CompareQuery, CreateInferenceJob, CreateTestRun, ImagesQuery, ListQuery, PageQuery, ValidateRequest } from './requests.ts';

export interface ControllerAppDeps {
  store: JobStore;
  admission: Admission;
  log: Logger;
  ready: () => Promise<void>;
  tier: Tier;
  auth: Authenticator;
  tokens: TokenStore;
  limiter: SubmitLimiter;
  /** Largest request body (KINFER_MAX_BODY_BYTES). */
  maxBodyBytes?: number;
  /** /metrics without a token (KINFER_METRICS_PUBLIC); else an admin's token. */
  metricsPublic?: boolean;
  models: ModelStore;
  /** What this installation can do (GET /capabilities). */
  capabilities: () => Promise<Record<string, unknown>>;
  /** Job state changes (LISTEN/NOTIFY) for GET .../events; absent: 503 there. */
  events?: JobEventHub | undefined;
  /** The predictor's base URL: /api/v1/predict is forwarded there (the dashboard's one origin). */
  predictorUrl?: string | undefined;
  /** Serve the dashboard (its pages and assets) from this directory; absent: no dashboard. */
  dashboardDir?: string | undefined;
  /** The dashboard's OIDC sign-in (GET /api/v1/auth/config), or null: API tokens only. */
  signIn?: { issuer: string; client_id: string; audience: string; scopes: string } | null | undefined;
  /** Where jobs write their artifacts (GET .../artifacts/..., DELETE of a job). */
  artifacts?: { storage: StorageClient; rootUri: string } | undefined;
}

const HIDDEN = new Set(['executor', 'executor_ref']);
const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const SEGMENT: Record<JobKind, string> = { test_run: 'test-runs', inference_job: 'inference-jobs' };

/** A job row as the API shows it (executor internals left out). */
export function present(job: Job): Record<string, unknown> {
  return Object.fromEntries(Object.entries(job).filter(([key]) => !HIDDEN.has(key)));
}

const JobId = z.uuid();

export function createControllerApp(deps: ControllerAppDeps): express.Express {
  const { store, admission, log } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.use(requestContext(log));
  healthRoutes(app, deps.ready);
  /** Every /api/v1 route (and /metrics unless public): a valid token first, then the body is read. */
  const authenticate = async (req: Request, res: Response, next: NextFunction) => {
    try {
      req.principal = await deps.auth.authenticate(req.header('authorization'));
      req.log = req.log.child({ user: req.principal.subject });
      next();
    } catch (err) {
      if (err instanceof HttpError && err.status === 401) res.setHeader('www-authenticate', 'Bearer realm="kinfer"');
      next(err);
    }
  };
  if (deps.metricsPublic ?? true) metricsRoutes(app, 'controller');
  else {
    app.use('/metrics', authenticate, (req, _res, next) => {
      requireRole(req, 'admin', 'reading metrics');
      next();
    });
    metricsRoutes(app, 'controller');
  }
  // Before the API's own parsing and authentication: the predictor reads the body and checks the token.
  predictProxy(app, deps.predictorUrl, log);
  if (deps.dashboardDir) dashboardRoutes(app, deps.dashboardDir, deps.signIn ? [new URL(deps.signIn.issuer).origin] : []);
  // How the dashboard signs a user in: public, as a provider's discovery document is.
  app.get('/api/v1/auth/config', (_req, res) => {
    res.json({ oidc: deps.signIn ?? null });
  });
  // The API's description is public: it says what a token allows, not what there is.
  let doc: Record<string, unknown> | undefined;
  app.get('/api/v1/openapi.json', (_req, res) => {
    res.json((doc ??= openApiDocument(process.env.npm_package_version ?? '0.1.0')));
  });
  app.get('/api/v1/docs', (_req, res) => {
    res.type('html').send(docsPage((doc ??= openApiDocument(process.env.npm_package_version ?? '0.1.0'))));
  });
  app.use('/api/v1', authenticate);
  // One audit line per state-changing request: who, what, which job, the outcome.
  app.use('/api/v1', (req, res, next) => {
    if (STATE_CHANGING.has(req.method)) {
      res.on('finish', () => {
        const p = req.principal;
        req.log.info(
          {
            audit: true,
            who: p?.subject,
            role: p?.role,
            via: p?.via,
            action: `${req.method} ${req.route ? `/api/v1${String(req.route.path)}` : req.originalUrl.split('?', 1)[0]}`,
            job_id: res.getHeader('x-job-id'),
            status: res.statusCode,
          },
          'audit',
        );
      });
    }
    next();
  });
  app.use(requireJsonBodies());
  app.use(express.json({ limit: deps.maxBodyBytes ?? 2 * 2 ** 20 }));
  app.use(rejectNulCharacters('validation_error'));

  /** Reads a model's ONNX header as the admission does; the problems, or what it is. */
  const inspectModel = async (uri: string, taskType: TaskType) => admission.describe(uri, taskType);

  const found = async (kind: JobKind, req: Request): Promise<Job> => {
    const id = String(req.params.id);
    const job = JobId.safeParse(id).success ? await store.get(kind, id) : null;
    // Another's job is not found: its existence is not the caller's to learn.
    if (!job || !canSee(callerOf(req), job)) throw new HttpError('not_found', `${kind === 'test_run' ? 'test run' : 'inference job'} ${id} not found`);
    req.res?.setHeader('x-job-id', job.id);
    req.log = req.log.child({ job_id: job.id });
    return job;
  };

  /** Admits a definition and stores it as a pending job, or throws the 400 / 429 / 503 that says why not. */
  const admitAndStore = async (def: JobDefinition, req: Request): Promise<Job> => {
    requireRole(req, 'user', 'submitting a job');
    const caller = callerOf(req);
    deps.limiter.take(caller.subject, await store.activeCountOf(caller.subject));
    let result;
    try {
      result = await admission.admit(def);
    } catch (err) {
      if (err instanceof StorageUnavailableError) throw new HttpError('storage_unavailable', err.message);
      throw err;
    }
    // Worded as the schema's refusals are ("invalid test run: ..."): the CLI heads its list with it.
    if (!result.admitted) throw validationError(result.problems, def.kind === 'test_run' ? 'test run' : 'inference job');
    const owned = { created_by: caller.subject };
    return result.job.kind === 'test_run' ? store.createTestRun({ ...result.job.row, ...owned }) : store.createInferenceJob({ ...result.job.row, ...owned });
  };

  const cancel = async (kind: JobKind, req: Request) => {
    const job = await found(kind, req);
    requireRole(req, 'user', 'cancelling a job');
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
    res.setHeader('x-job-id', job.id);
    try {
      await deps.tier.onCreated(kind, job);
    } catch (err) {
      // Never leave a pending job that nothing will run.
      await store.failIfActive(kind, job.id, `could not hand the job to the executor: ${(err as Error).message}`, 'EXECUTOR_UNAVAILABLE');
      log.error({ err }, 'job could not be handed to the executor');
      throw new HttpError('executor_unavailable', `the job was not started: ${(err as Error).message}`, { id: job.id });
    }
    log.info(`${kind === 'test_run' ? 'test run' : 'inference job'} created`);
    res
      .status(201)
      .location(`/api/v1/${SEGMENT[kind]}/${job.id}`)
      .json(present((await store.get(kind, job.id)) ?? job));
  };

  const router = express.Router();

  // Test runs of one dataset side by side (before /test-runs/:id, which would take `compare` for an id).
  router.get('/test-runs/compare', async (req, res) => {
    const q = parseOr(CompareQuery, req.query, 'validation_error', 'query');
    const runs: TestRun[] = [];
    for (const id of q.ids) {
      const run = JobId.safeParse(id).success ? await store.get('test_run', id) : null;
      if (!run || !canSee(callerOf(req), run)) throw new HttpError('not_found', `test run ${id} not found`);
      runs.push(run);
    }
    const why = incomparable(runs);
    if (why) throw validationError([{ field: 'ids', message: why }]);
    const disagreements = await store.disagreements(q.ids, { skip: q.skip, limit: q.limit });
    res.json({ ...compareTestRuns(runs), disagreements: { total_count: disagreements.total, skip: q.skip, limit: q.limit, items: disagreements.items } });
  });

  // The same three routes for both kinds: list (newest first), one, cancel.
  for (const kind of ['test_run', 'inference_job'] as const) {
    router.get(`/${SEGMENT[kind]}`, async (req, res) => {
      const q = parseOr(ListQuery, req.query, 'validation_error', 'query');
      const page = await store.list(kind, { ...q, visibleTo: visibilityOf(callerOf(req)) });
      res.json({ total_count: page.total, skip: q.skip, limit: q.limit, items: page.items.map(present) });
    });
    router.get(`/${SEGMENT[kind]}/:id`, async (req, res) => {
      const job = await found(kind, req);
      // A sharded job shows each shard's counts (the job's are their sums).
      res.json({ ...present(job), ...(job.parallelism > 1 ? { shards: await store.shards(job.id) } : {}) });
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
      await sendStream(res, exportChunks(format, job.task_type, store.allImages(kind, job.id)));
    });
  }

  // Live progress, artifacts, and deleting a finished job, for both kinds.
  for (const kind of ['test_run', 'inference_job'] as const) {
    router.get(`/${SEGMENT[kind]}/:id/events`, async (req, res) => {
      const job = await found(kind, req);
      if (!deps.events) throw new HttpError('not_found', 'live events are not enabled here');
      await streamJobEvents(req, res, { kind, job, store, hub: deps.events, present });
    });
    if (deps.artifacts)
      artifactRoutes(router, { kind, segment: SEGMENT[kind], found, store, onDeleted: (k, j) => deps.tier.onDeleted(k, j), ...deps.artifacts });
  }

  router.post('/test-runs', async (req, res) => {
    const body = parseOr(CreateTestRun, req.body, 'validation_error', 'test run');
    await created('test_run', await admitAndStore(definitionFromTestRunRequest(body), req), req, res);
  });

  router.get('/test-runs/:id/images', async (req, res) => {
    const q = parseOr(ImagesQuery, req.query, 'validation_error', 'query');
    const run = await found('test_run', req);
    const page = await store.listTestImages(run.id, {
      skip: q.skip,
      limit: q.limit,
      isCorrect: q.filter_correct,
      trueLabel: q.true_label,
      predictedLabel: q.predicted_label,
    });
    // Nothing found for a label the run has no class of: a typo, said so rather than an empty page.
    const classes = (run as TestRun).class_names;
    if (page.filteredTotal === 0 && classes) {
      const unknown = (['true_label', 'predicted_label'] as const).filter((f) => q[f] !== undefined && !classes.includes(q[f]!));
      if (unknown.length > 0)
        throw validationError(unknown.map((f) => ({ field: f, message: `${JSON.stringify(q[f])} is not a class of this test run (${classes.join(', ')})` })));
    }
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
    await created('inference_job', await admitAndStore(definitionFromInferenceRequest(body), req), req, res);
  });

  // The full submit-time validation of a request, nothing created: every problem listed.
  router.post('/validate', async (req, res) => {
    const { kind, request } = parseOr(ValidateRequest, req.body, 'validation_error', 'validation request');
    const schema = kind === 'test_run' ? CreateTestRun : CreateInferenceJob;
    const parsed = schema.safeParse(request);
    if (!parsed.success) {
      res.json({ valid: false, problems: fieldProblems(parsed.error) });
      return;
    }
    const def: JobDefinition =
      kind === 'test_run' ? definitionFromTestRunRequest(parsed.data as CreateTestRun) : definitionFromInferenceRequest(parsed.data as CreateInferenceJob);
    const result = await admission.admit(def).catch((err: unknown) => {
      if (err instanceof StorageUnavailableError) throw new HttpError('storage_unavailable', err.message);
      throw err;
    });
    if (!result.admitted) res.json({ valid: false, problems: result.problems, ...(result.model ? { model: result.model.metadata } : {}) });
    else res.json({ valid: true, problems: [], model: result.model.metadata });
  });

  router.get('/capabilities', async (_req, res) => {
    res.json(await deps.capabilities());
  });

  modelRoutes(router, { models: deps.models, inspect: (uri, taskType) => inspectModel(uri, taskType) });

  router.get('/inference-jobs/:id/results', async (req, res) => {
    const q = parseOr(PageQuery, req.query, 'validation_error', 'query');
    const job = await found('inference_job', req);
    const page = await store.listInferenceResults(job.id, q);
    res.json({ total_count: page.total, skip: q.skip, limit: q.limit, results: page.items });
  });

  tokenRoutes(router, deps.tokens);
  app.use('/api/v1', router);
  app.use(noSuchEndpoint('/api/v1/openapi.json'));
  app.use(errorHandler());
  return app;
}
