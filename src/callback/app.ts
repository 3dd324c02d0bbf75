// The runner-facing HTTP API. Order of checks: token (401), token bound to this job (403), and
// only then the body is read (an unauthenticated caller cannot make the service parse 8 MB);
// payload (422), job exists (404), job still active (409 for progress/results).
import express, { type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import {
  DonePayload,
  ImageResultsBatch,
  MAX_PARALLELISM,
  ProgressPayload,
  ShardDonePayload,
  type CallbackReply,
  type JobKind,
  type ShardDoneReply,
} from '../contract/index.ts';
import type { JobStore, UpdateOutcome } from '../db/job-store.ts';
import type { Logger } from '../http/logger.ts';
import { metricsRoutes } from '../http/metrics.ts';
import { HttpError } from '../http/errors.ts';
import { errorHandler, healthRoutes, noSuchEndpoint, parseOr, rejectNulCharacters, requestContext } from '../http/plumbing.ts';
import type { TokenVerifier } from './token-verifier.ts';

export interface CallbackAppDeps {
  store: JobStore;
  verifier: TokenVerifier;
  log: Logger;
  ready: () => Promise<void>;
}

const KIND_BY_SEGMENT: Record<string, JobKind> = { 'test-runs': 'test_run', 'inference-jobs': 'inference_job' };
const JobId = z.uuid();
const ShardIndex = z.coerce
  .number()
  .int()
  .min(0)
  .max(MAX_PARALLELISM - 1);
/** The largest body a runner sends: a results batch is cut at 4 MB of JSON (runner reporter.ts). */
export const CALLBACK_BODY_LIMIT = '8mb';

function reply(res: Response, outcome: UpdateOutcome): void {
  if (outcome.outcome === 'not_found') throw new HttpError('not_found', 'no such job');
  if (outcome.outcome === 'inconsistent') throw new HttpError('invalid_payload', outcome.message);
  const body: CallbackReply = { status: outcome.status, applied: outcome.outcome === 'applied' };
  res.status(outcome.outcome === 'terminal' ? 409 : 200).json(body);
}

declare module 'express-serve-static-core' {
  interface Request {
    callbackJob?: { id: string; kind: JobKind };
  }
}

export function createCallbackApp({ store, verifier, log, ready }: CallbackAppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  // Runners never revalidate a reply: hashing every JSON body for an ETag was CPU for nothing.
  app.disable('etag');
  app.use(requestContext(log));
  metricsRoutes(app, 'callback');
  healthRoutes(app, ready);

  /**
   * Authenticates from the headers alone, binds the token to the path's job, then reads the body.
   * A refused caller's body is never parsed, and its connection is closed rather than drained.
   */
  const authenticated = (kindOf: (req: Request) => JobKind | undefined) => [
    (req: Request, res: Response, next: NextFunction) => {
      try {
        const kindFromPath = kindOf(req);
        const claims = verifier.verify(req.header('authorization'));
        const id = String(req.params.id);
        verifier.authorize(claims, id, kindFromPath);
        if (!JobId.safeParse(id).success) throw new HttpError('not_found', 'no such job');
        req.log = req.log.child({ job_id: id });
        req.callbackJob = { id, kind: claims.kind };
        next();
      } catch (err) {
        res.setHeader('connection', 'close');
        next(err);
      }
    },
    express.json({ limit: CALLBACK_BODY_LIMIT }),
    rejectNulCharacters('invalid_payload'),
  ];
  const kindFromSegment = (req: Request): JobKind => {
    const kind = KIND_BY_SEGMENT[String(req.params.segment)];
    if (!kind) throw new HttpError('not_found', 'no such endpoint');
    return kind;
  };

  app.post('/api/v1/inference/:id/progress', ...authenticated(() => undefined), async (req, res) => {
    const { id, kind } = req.callbackJob!;
    const payload = parseOr(ProgressPayload, req.body, 'invalid_payload', 'progress payload');
    const { shard } = payload;
    reply(res, shard ? await store.applyShardProgress(kind, id, { ...payload, shard }) : await store.applyProgress(kind, id, payload));
  });

  app.post('/api/v1/:segment/:id/shards/:shard/done', ...authenticated(kindFromSegment), async (req, res) => {
    const { id, kind } = req.callbackJob!;
    const shard = parseOr(ShardIndex, req.params.shard, 'invalid_payload', 'shard index');
    const payload = parseOr(ShardDonePayload, req.body, 'invalid_payload', 'shard done payload');
    const outcome = await store.applyShardDone(kind, id, shard, payload);
    req.log.info({ shard, outcome: outcome.outcome, last: 'last' in outcome ? outcome.last : undefined }, 'shard done received');
    if ('last' in outcome) {
      const body: ShardDoneReply = { status: outcome.status, applied: true, last: outcome.last };
      res.json(body);
      return;
    }
    reply(res, outcome);
  });

  app.post('/api/v1/:segment/:id/image-results', ...authenticated(kindFromSegment), async (req, res) => {
    const { id, kind } = req.callbackJob!;
    const batch = parseOr(ImageResultsBatch, req.body, 'invalid_payload', 'image results');
    reply(res, await store.insertImageResults(kind, id, batch.results));
  });

  app.post('/api/v1/:segment/:id/done', ...authenticated(kindFromSegment), async (req, res) => {
    const { id, kind } = req.callbackJob!;
    const done = parseOr(DonePayload, req.body, 'invalid_payload', 'done payload');
    const outcome = await store.applyDone(kind, id, done);
    req.log.info({ status: done.status, outcome: outcome.outcome }, 'done received');
    reply(res, outcome);
  });

  app.get('/api/v1/inference-jobs/:id/input', ...authenticated(() => 'inference_job'), async (req, res) => {
    const job = await store.get('inference_job', req.callbackJob!.id);
    if (!job) throw new HttpError('not_found', 'no such job');
    res.json({ input_config: job.input_config });
  });

  app.use(noSuchEndpoint());
  app.use(errorHandler());
  return app;
}
