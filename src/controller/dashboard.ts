// The dashboard, served by the controller on the API's origin (no other server): its page for
// each of the dashboard's URLs, its assets, and /api/v1/predict forwarded to the predictor so
// that the browser talks to one origin with one set of credentials.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type Express, type Request, type Response } from 'express';
import { request } from 'undici';
import type { Logger } from '../http/logger.ts';
import { sendStream } from '../http/send-stream.ts';

export const DASHBOARD_DIR = fileURLToPath(new URL('../../dist/dashboard', import.meta.url));

/** The dashboard's pages: stable URLs a user can bookmark and share. */
export const DASHBOARD_PAGES = ['/', '/predict', '/history', '/compare', '/test-runs/new', '/test-runs/:id', '/inference-jobs/:id', '/auth/callback'];

/** `connect`: other origins the page may call (the OIDC provider's token endpoint). */
const securityHeaders = (connect: string[]) => ({
  'content-security-policy': `default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; connect-src ${["'self'", ...connect].join(' ')}; frame-ancestors 'none'`,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
});

export function dashboardRoutes(app: Express, dir = DASHBOARD_DIR, connect: string[] = []): void {
  const SECURITY_HEADERS = securityHeaders(connect);
  app.use('/assets', (_req, res, next) => {
    res.set(SECURITY_HEADERS);
    next();
  });
  app.use('/assets', express.static(join(dir, 'assets'), { fallthrough: false, maxAge: 0 }));
  app.get(DASHBOARD_PAGES, (_req: Request, res: Response) => {
    const page = join(dir, 'index.html');
    res.set(SECURITY_HEADERS);
    if (!existsSync(page)) {
      res.status(503).type('text').send('The dashboard is not built here: run `npm run build:dashboard` (npm start and npm test do).\n');
      return;
    }
    res.set('cache-control', 'no-cache').sendFile(page);
  });
}

/**
 * POST /api/v1/predict and /api/v1/predict/batch, forwarded as they are (headers with the
 * caller's credentials, body streamed) to the predictor, which authenticates them itself.
 */
export function predictProxy(app: Express, predictorUrl: string | undefined, log: Logger): void {
  app.post(['/api/v1/predict', '/api/v1/predict/batch'], async (req: Request, res: Response) => {
    if (!predictorUrl) {
      res.status(503).json({ error: 'predictor_unavailable', message: 'no predictor is configured here (KINFER_PREDICTOR_URL)' });
      return;
    }
    const headers: Record<string, string> = {};
    for (const name of ['authorization', 'content-type', 'content-length', 'x-request-id', 'traceparent']) {
      const value = req.header(name);
      if (value) headers[name] = value;
    }
    // The sticky header of a traffic split travels too.
    for (const [name, value] of Object.entries(req.headers)) if (name.startsWith('x-') && typeof value === 'string') headers[name] = value;
    try {
      const upstream = await request(`${predictorUrl.replace(/\/+$/, '')}${req.originalUrl}`, { method: 'POST', headers, body: req });
      res.status(upstream.statusCode);
      for (const name of ['content-type', 'x-model-version', 'www-authenticate']) {
        const value = upstream.headers[name];
        if (typeof value === 'string') res.setHeader(name, value);
      }
      await sendStream(res, upstream.body);
    } catch (err) {
      log.warn({ err }, 'predictor unreachable');
      if (!res.headersSent) res.status(503).json({ error: 'predictor_unavailable', message: 'the predictor does not answer; retry' });
      else res.end();
    }
  });
}
