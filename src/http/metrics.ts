// Prometheus metrics of a service at GET /metrics: process and Node runtime metrics (prom-client
// defaults) and request durations by method, route and status. One registry per app, so that
// several apps in one process (tests) do not collide.
import type { Express, NextFunction, Request, Response } from 'express';
import { collectDefaultMetrics, Histogram, Registry } from 'prom-client';

export function metricsRoutes(app: Express, service: 'controller' | 'callback' | 'predictor'): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry, prefix: 'kinfer_' });
  const duration = new Histogram({
    name: 'kinfer_http_request_duration_seconds',
    help: 'HTTP request durations by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  app.use((req: Request, res: Response, next: NextFunction) => {
    const end = duration.startTimer();
    // The matched route pattern, not the path: ids would make every request its own series.
    res.on('finish', () => end({ method: req.method, route: req.route ? `${req.baseUrl}${req.route.path}` : 'unmatched', status: String(res.statusCode) }));
    next();
  });
  app.get('/metrics', async (_req, res) => {
    res.type(registry.contentType).send(await registry.metrics());
  });
  return registry;
}
