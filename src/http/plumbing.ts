// Express pieces both services use: trace ids, request logs, JSON errors, health endpoints.
import { randomUUID } from 'node:crypto';
import { rename, writeFile } from 'node:fs/promises';
import type { ErrorRequestHandler, Express, NextFunction, Request, Response } from 'express';
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
  return error.issues.map((issue) => {
    if (issue.code === 'unrecognized_keys') {
      return { field: [...issue.path, ...issue.keys].join('.'), message: 'unknown field' };
    }
    const field = issue.path.length > 0 ? issue.path.join('.') : '(body)';
    return { field, message: issue.code === 'invalid_type' && /received undefined$/.test(issue.message) ? 'is required' : issue.message };
  });
}

/** Parses with zod or throws an HttpError that names every bad field (400 validation_error, or 422 invalid_payload for callbacks). */
export function parseOr<T extends z.ZodType>(schema: T, value: unknown, code: 'validation_error' | 'invalid_payload', what: string): z.output<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const fields = fieldProblems(result.error);
  throw new HttpError(code, `invalid ${what}: ${fields.map((f) => `${f.field}: ${f.message}`).join('; ')}`, { fields });
}

export function requestContext(log: Logger) {
  return (req: Request, res: Response, next: NextFunction) => {
    const header = req.header('x-trace-id');
    req.traceId = header && /^[\w.:-]{1,128}$/.test(header) ? header : randomUUID();
    res.setHeader('x-trace-id', req.traceId);
    req.log = log.child({ trace_id: req.traceId });
    const started = performance.now();
    res.on('finish', () => {
      req.log.info({ method: req.method, path: req.originalUrl, status: res.statusCode, ms: Math.round(performance.now() - started) }, 'request');
    });
    next();
  };
}

export function errorHandler(): ErrorRequestHandler {
  return (err, req, res, _next) => {
    if (err instanceof HttpError) {
      res.status(err.status).json(err.body);
      return;
    }
    // express.json() parse failures and oversize bodies carry their own status.
    const status = typeof err?.status === 'number' && err.status >= 400 && err.status < 500 ? err.status : 500;
    if (status === 500) req.log.error({ err }, 'request failed');
    const code: ErrorCode = status === 500 ? 'internal_error' : status === 413 ? 'payload_too_large' : 'bad_request';
    res.status(HTTP_ERRORS[code].status).json({ error: code, message: status === 500 ? 'internal error' : String(err.message) });
  };
}

export function healthRoutes(app: Express, ready: () => Promise<void>): void {
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    try {
      await ready();
      res.json({ status: 'ready' });
    } catch (err) {
      res.status(503).json({ status: 'not_ready', message: (err as Error).message });
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
export async function announcePort(port: number): Promise<void> {
  const file = process.env.KINFER_PORT_FILE;
  if (!file) return;
  // Written whole, then renamed: a reader never sees a half-written number.
  await writeFile(`${file}.partial`, `${port}\n`);
  await rename(`${file}.partial`, file);
}

/**
 * Runs `cleanup` once on SIGTERM or SIGINT, then exits 0. Started by `kinfer serve`
 * (KINFER_EXIT_WITH_PARENT=1), a service also stops when its parent dies and stdin closes.
 */
export function stopOnSignals(cleanup: () => Promise<void>, log?: Logger): void {
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
  if (process.env.KINFER_EXIT_WITH_PARENT === '1') {
    process.stdin.on('end', stop).on('close', stop).resume();
  }
}
