// Express pieces both services use: trace ids, request logs, JSON errors, health endpoints.
import { randomUUID } from 'node:crypto';
import { rename, writeFile } from 'node:fs/promises';
import type { ErrorRequestHandler, Express, NextFunction, Request, RequestHandler, Response } from 'express';
import type { z } from 'zod';
import { HTTP_ERRORS, HttpError, type ErrorCode, type FieldProblem } from './errors.ts';
import type { Logger } from './logger.ts';

export { HttpError, type FieldProblem };

declare module 'express-serve-static-core' {
  interface Request {
    traceId: string;
    log: Logger;
  }
}

/** zod issues as `{field, message}`, the field as a dotted path (`input_config.image_paths.2`). */
export function fieldProblems(error: z.ZodError): FieldProblem[] {
  return error.issues.flatMap((issue) => {
    // One issue names every unknown key of an object: each is a field of its own.
    if (issue.code === 'unrecognized_keys') return issue.keys.map((key) => ({ field: [...issue.path, key].join('.'), message: 'unknown field' }));
    const field = issue.path.length > 0 ? issue.path.join('.') : '(body)';
    return [{ field, message: issue.code === 'invalid_type' && /received undefined$/.test(issue.message) ? 'is required' : issue.message }];
  });
}

/** Parses with zod or throws an HttpError that names every bad field (400 validation_error, or 422 invalid_payload for callbacks). */
export function parseOr<T extends z.ZodType>(schema: T, value: unknown, code: 'validation_error' | 'invalid_payload', what: string): z.output<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const fields = fieldProblems(result.error);
  throw new HttpError(code, `invalid ${what}: ${fields.map((f) => `${f.field}: ${f.message}`).join('; ')}`, { fields });
}

/**
 * Paths that probes and scrapers call on a schedule: kubelet's probes (every 5-10 s a Pod), the
 * subprocess tier's wait for the callback service (every 2 s), Prometheus. Answered, they are
 * logged at debug: at info they buried the requests worth reading (`kinfer serve` printed one
 * every 2 s). A refusal or failure there is logged at info like any other.
 */
const ROUTINE_PATHS = new Set(['/healthz', '/readyz', '/v2/health/live', '/v2/health/ready', '/metrics']);

export function requestContext(log: Logger) {
  return (req: Request, res: Response, next: NextFunction) => {
    const header = req.header('x-trace-id');
    req.traceId = header && /^[\w.:-]{1,128}$/.test(header) ? header : randomUUID();
    res.setHeader('x-trace-id', req.traceId);
    req.log = log.child({ trace_id: req.traceId });
    const started = performance.now();
    res.on('finish', () => {
      // The path without its query string: queries are the caller's, and may carry what a log must not.
      const path = req.originalUrl.split('?', 1)[0]!;
      const level = res.statusCode < 400 && ROUTINE_PATHS.has(path) ? 'debug' : 'info';
      req.log[level]({ method: req.method, path, status: res.statusCode, ms: Math.round(performance.now() - started) }, 'request');
    });
    next();
  };
}

/** Where in a JSON value the first strings (or keys) with a NUL character are, as dotted paths. */
export function nulCharacterPaths(value: unknown, path: string[] = [], found: string[] = []): string[] {
  if (found.length >= 10) return found;
  if (typeof value === 'string') {
    if (value.includes('\u0000')) found.push(path.length > 0 ? path.join('.') : '(body)');
  } else if (ArrayBuffer.isView(value)) {
    // Bytes (an image sent as the body) are not text: NUL is a byte like any other.
  } else if (Array.isArray(value)) {
    value.forEach((item, i) => nulCharacterPaths(item, [...path, String(i)], found));
  } else if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      if (key.includes('\u0000')) found.push([...path, key].join('.'));
      else nulCharacterPaths(item, [...path, key], found);
    }
  }
  return found;
}

/**
 * Refuses a body or query with a NUL character anywhere, naming the fields: Postgres text and
 * jsonb cannot store one, so it would otherwise fail later as a 500 or a job stuck `running`.
 */
export function rejectNulCharacters(code: 'validation_error' | 'invalid_payload') {
  return (req: Request, _res: Response, next: NextFunction) => {
    const fields = [...nulCharacterPaths(req.query).map((f) => `query.${f}`), ...nulCharacterPaths(req.body)].map((field) => ({
      field,
      message: 'must not contain NUL characters',
    }));
    if (fields.length === 0) return next();
    next(new HttpError(code, `invalid request: ${fields.map((f) => `${f.field}: ${f.message}`).join('; ')}`, { fields }));
  };
}

const DATABASE_DOWN_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', '57P01', '57P02', '57P03']);
const DATABASE_DOWN_MESSAGE =
  /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|Connection ended unexpectedly|the database system is (starting up|shutting down)/i;
/** Seconds a client is told to wait while the database is away. */
export const DATABASE_RETRY_AFTER_SECONDS = 5;

/** Is this error the database being unreachable (a 503 to retry), rather than a bug (a 500)? */
export function isDatabaseUnavailable(err: unknown): boolean {
  type Chained = { code?: unknown; message?: unknown; driverError?: unknown; cause?: unknown };
  for (let e = err as Chained | undefined, depth = 0; e && typeof e === 'object' && depth < 4; e = (e.driverError ?? e.cause) as Chained | undefined, depth++) {
    if (typeof e.code === 'string' && (DATABASE_DOWN_CODES.has(e.code) || e.code.startsWith('08'))) return true;
    if (typeof e.message === 'string' && DATABASE_DOWN_MESSAGE.test(e.message)) return true;
  }
  return false;
}

/**
 * A body sent as something other than JSON, where a route reads JSON: 415, naming the header.
 * express.json() would skip it, and the route see no body at all ("(body): is required"), the
 * answer curl users got for `--data` without `-H 'Content-Type: application/json'`.
 */
export function requireJsonBodies(): RequestHandler {
  return (req, _res, next) => {
    // req.is: null when there is no body, false when the body is of another type. An empty one
    // (`Content-Length: 0`, as fetch sends for a POST without a body) is no body either.
    if (req.is('application/json') === false && req.header('content-length') !== '0') {
      const type = req.header('content-type');
      return next(
        new HttpError(
          'unsupported_media_type',
          `the body must be sent as JSON (Content-Type: application/json), not ${type ? `as ${type}` : 'without a Content-Type'}`,
        ),
      );
    }
    next();
  };
}

/**
 * The last handler of a service: 404 naming what was asked (method and path; not the query, which
 * may carry what must not be echoed), and where the routes are when the service says so.
 */
export function noSuchEndpoint(routes?: string): RequestHandler {
  return (req, _res, next) => {
    const asked = `${req.method} ${req.originalUrl.split('?', 1)[0]}`;
    next(new HttpError('not_found', `no such endpoint: ${asked}${routes ? ` (see ${routes})` : ''}`));
  };
}

/** An HttpError that says when to come back (`retry_after_seconds`) says it in Retry-After too. */
export function setRetryAfter(res: Response, err: HttpError): void {
  const retry = err.body.retry_after_seconds;
  if (typeof retry === 'number') res.setHeader('retry-after', String(retry));
}

export function errorHandler(): ErrorRequestHandler {
  return (err, req, res, _next) => {
    if (err instanceof HttpError) {
      setRetryAfter(res, err);
      res.status(err.status).json(err.body);
      return;
    }
    if (isDatabaseUnavailable(err)) {
      req.log.warn({ err: { message: (err as Error).message, code: (err as { code?: string }).code } }, 'database unavailable');
      res.setHeader('retry-after', String(DATABASE_RETRY_AFTER_SECONDS));
      res.status(HTTP_ERRORS.database_unavailable.status).json({ error: 'database_unavailable', message: 'the database is unreachable; retry later' });
      return;
    }
    // express.json() parse failures and oversize bodies carry their own status.
    const status = typeof err?.status === 'number' && err.status >= 400 && err.status < 500 ? err.status : 500;
    if (status === 500) req.log.error({ err }, 'request failed');
    const code: ErrorCode = status === 500 ? 'internal_error' : status === 413 ? 'payload_too_large' : 'bad_request';
    const message = status === 500 ? 'internal error' : clientErrorMessage(err);
    res.status(HTTP_ERRORS[code].status).json({ error: code, message });
  };
}

/**
 * What a client is told of a 4xx that express.json() raised (a body it refused, one over the
 * limit). Its strict mode takes only objects and arrays, and words the refusal of valid JSON as a
 * syntax error (`Unexpected token 'n', "null" is not valid JSON`): that one is said as it is.
 */
export function clientErrorMessage(err: { type?: unknown; message?: unknown; body?: unknown }): string {
  if (err.type !== 'entity.parse.failed') return String(err.message);
  if (typeof err.body === 'string') {
    try {
      const value: unknown = JSON.parse(err.body);
      return `the body must be a JSON object, not ${value === null ? 'null' : `a ${typeof value}`}`;
    } catch {
      // Not JSON at all: the parser's own words say where.
    }
  }
  return `the body is not valid JSON: ${String(err.message)}`;
}

/**
 * /healthz: the process answers. /readyz: its dependencies answer; a failure is logged, and the
 * caller (unauthenticated) learns only that the service is not ready.
 */
export function healthRoutes(app: Express, ready: () => Promise<void>, log?: Logger): void {
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (req, res) => {
    try {
      await ready();
      res.json({ status: 'ready' });
    } catch (err) {
      (req.log ?? log)?.warn({ err }, 'not ready');
      res.setHeader('retry-after', String(DATABASE_RETRY_AFTER_SECONDS));
      res.status(503).json({ status: 'not_ready', message: isDatabaseUnavailable(err) ? 'the database is unreachable' : 'a dependency is unavailable' });
    }
  });
}

/** Listens and resolves with the bound port (0 picks a free one). */
export function listen(app: Express, host: string, port: number): Promise<{ port: number; close: () => Promise<void> }> {
  return new Promise((resolve, reject) => {
    const server = app.listen(port, host, (err?: Error) => {
      if (err) return reject(err);
      const address = server.address();
      resolve({
        port: typeof address === 'object' && address ? address.port : port,
        close: () => new Promise((done) => server.close(() => done())),
      });
    });
    server.on('error', reject);
  });
}

/**
 * Writes the port a service listens on to KINFER_PORT_FILE when set: a launcher that asked for
 * port 0 learns which port the system picked, with no window in which another process could
 * take a port chosen in advance (kinfer serve, the tests).
 */
async function announcePort(port: number): Promise<void> {
  const file = process.env.KINFER_PORT_FILE;
  if (!file) return;
  // Written whole, then renamed: a reader never sees a half-written number.
  await writeFile(`${file}.partial`, `${port}\n`);
  await rename(`${file}.partial`, file);
}

/** What the parent's going does: exit at once, until stopOnSignals gives the service's clean stop. */
let onParentGone: () => void = () => process.exit(0);

/**
 * Started by `kinfer serve` or the demo (KINFER_EXIT_WITH_PARENT=1), a service stops when its
 * parent dies and stdin, a pipe the parent never writes, closes. Called first thing: a parent that
 * is gone while the service still waits for its database (up to KINFER_DATABASE_WAIT_SECONDS) would
 * otherwise leave it running that long, alone.
 */
export function stopWithParent(log?: Logger): void {
  if (process.env.KINFER_EXIT_WITH_PARENT !== '1') return;
  const gone = () => onParentGone();
  // A broken pipe to the parent is the parent gone too; unheard, its 'error' would be fatal.
  process.stdin
    .on('end', gone)
    .on('close', gone)
    .on('error', (err) => {
      log?.warn({ err }, 'lost the pipe to the parent process; stopping');
      gone();
    })
    .resume();
}

/** Runs `cleanup` once on SIGTERM, SIGINT or the parent's going (stopWithParent), then exits 0. */
function stopOnSignals(cleanup: () => Promise<void>, log?: Logger): void {
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    cleanup().then(
      () => process.exit(0),
      (err: unknown) => {
        log?.error({ err }, 'clean stop failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  onParentGone = stop;
}

/**
 * A listening service says it is ready: its clean stop (`cleanup` on SIGTERM, SIGINT or the
 * parent's going) in place first, then its port announced. In the other order a launcher that
 * stops it the moment the port appears (kinfer serve, the tests) met Node's own SIGTERM handling,
 * which ends the process by the signal, without its clean stop.
 */
export async function readyToServe(port: number, cleanup: () => Promise<void>, log?: Logger): Promise<void> {
  stopOnSignals(cleanup, log);
  await announcePort(port);
}

/**
 * The last line of defence: a promise nobody handled is logged, not fatal. A service must not die
 * because a dependency blinked (every known path handles its own errors; this catches the rest).
 */
export function guardProcess(log: Logger): void {
  process.on('unhandledRejection', (reason) => {
    log.error({ err: reason }, 'unhandled rejection (kept running)');
  });
  // A throw nobody caught leaves the process in an unknown state: it still exits (1, as Node
  // would), but says why in its own log, where its supervisor and operators look.
  process.on('uncaughtException', (err) => {
    log.fatal({ err }, `uncaught exception, exiting: ${err.message}`);
    process.exit(1);
  });
}
