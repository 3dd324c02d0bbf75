// The runner-facing HTTP API. Order of checks: token (401), token bound to this job (403),
// payload (422), job exists (404), job still active (409 for progress/results).
import express, { type Request, type Response } from 'express';
import { z } from 'zod';
import { DonePayload, ImageResultsBatch, ProgressPayload, type CallbackReply, type JobKind } from '../contract/index.ts';
import type { JobStore, UpdateOutcome } from '../db/job-store.ts';
import type { Logger } from '../http/logger.ts';
import { metricsRoutes } from '../http/metrics.ts';
import { HttpError } from '../http/errors.ts';
import { errorHandler, healthRoutes, parseOr, requestContext } from '../http/plumbing.ts';
import type { TokenVerifier } from './token-verifier.ts';

export interface CallbackAppDeps {
  store: JobStore;
  verifier: TokenVerifier;
  log: Logger;
  ready: () => Promise<void>;
}

const KIND_BY_SEGMENT: Record<string, JobKind> = { 'test-runs': 'test_run', 'inference-jobs': 'inference_job' };
const JobId = z.uuid();

function reply(res: Response, outcome: UpdateOutcome): void {
  if (outcome.outcome === 'not_found') throw new HttpError('not_found', 'no such job');
  const body: CallbackReply = { status: outcome.status, applied: outcome.outcome === 'applied' };
  res.status(outcome.outcome === 'terminal' ? 409 : 200).json(body);
}

export function createCallbackApp({ store, verifier, log, ready }: CallbackAppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(requestContext(log));
  metricsRoutes(app, 'callback');
  app.use(express.json({ limit: '8mb' }));
  healthRoutes(app, ready);

  /** Authenticates, binds the token to the path's job, and returns who is calling. */
  const caller = (req: Request, kindFromPath?: JobKind) => {
    const claims = verifier.verify(req.header('authorization'));
    const id = String(req.params.id);
    verifier.authorize(claims, id, kindFromPath);
    if (!JobId.safeParse(id).success) throw new HttpError('not_found', 'no such job');
    req.log = req.log.child({ job_id: id });
    return { id, kind: claims.kind };
  };

  app.post('/api/v1/inference/:id/progress', async (req, res) => {
    const { id, kind } = caller(req);
    const payload = parseOr(ProgressPayload, req.body, 'invalid_payload', 'progress payload');
    reply(res, await store.applyProgress(kind, id, payload));
  });

  app.post('/api/v1/:segment/:id/image-results', async (req, res) => {
    const kind = KIND_BY_SEGMENT[String(req.params.segment)];
    if (!kind) throw new HttpError('not_found', 'no such endpoint');
    const { id } = caller(req, kind);
    const batch = parseOr(ImageResultsBatch, req.body, 'invalid_payload', 'image results');
    reply(res, await store.insertImageResults(kind, id, batch.results));
  });

  app.post('/api/v1/:segment/:id/done', async (req, res) => {
    const kind = KIND_BY_SEGMENT[String(req.params.segment)];
    if (!kind) throw new HttpError('not_found', 'no such endpoint');
    const { id } = caller(req, kind);
    const done = parseOr(DonePayload, req.body, 'invalid_payload', 'done payload');
    const outcome = await store.applyDone(kind, id, done);
    req.log.info({ status: done.status, outcome: outcome.outcome }, 'done received');
    reply(res, outcome);
  });

  app.use((_req, _res) => {
    throw new HttpError('not_found', 'no such endpoint');
  });
  app.use(errorHandler());
  return app;
}
