import express from 'express';
import { errorHandler, healthRoutes, requestContext } from '../../src/http/plumbing.ts';
import { capturedLog } from '../support/captured-log.ts';
import { serve, type Served } from '../support/in-process.ts';

// Every service's request log (src/http/plumbing.ts) through a real HTTP server: what probes call
// on a schedule is kept out of the info level while it answers, and nothing else is.
describe('request log', () => {
  let served: Served;
  let ready = true;
  const captured = capturedLog('debug');
  const requests = () =>
    captured.lines.filter((l) => l.msg === 'request').map((l) => [l.level === 20 ? 'debug' : l.level === 30 ? 'info' : l.level, l.path, l.status]);

  beforeAll(async () => {
    const app = express();
    app.use(requestContext(captured.log));
    healthRoutes(app, async () => {
      if (!ready) throw new Error('the database is away');
    });
    app.get('/metrics', (_req, res) => void res.type('text/plain').send('up 1\n'));
    app.get('/api/v1/test-runs', (_req, res) => void res.json([]));
    app.use(errorHandler());
    served = await serve(app);
  });
  afterAll(() => served.close());
  beforeEach(() => captured.lines.splice(0));

  const get = async (path: string) => (await fetch(`${served.url}${path}`)).status;

  it('logs answered probes and scrapes at debug, the API at info', async () => {
    expect([await get('/healthz'), await get('/readyz'), await get('/metrics?x=1'), await get('/api/v1/test-runs')]).toEqual([200, 200, 200, 200]);
    await new Promise((r) => setImmediate(r));
    expect(requests()).toEqual([
      ['debug', '/healthz', 200],
      ['debug', '/readyz', 200],
      ['debug', '/metrics', 200],
      ['info', '/api/v1/test-runs', 200],
    ]);
  });

  it('logs a probe that fails at info, with why it failed', async () => {
    ready = false;
    try {
      expect(await get('/readyz')).toBe(503);
    } finally {
      ready = true;
    }
    await new Promise((r) => setImmediate(r));
    expect(requests()).toEqual([['info', '/readyz', 503]]);
    expect(captured.lines.find((l) => l.msg === 'not ready')).toMatchObject({ level: 40, err: { message: 'the database is away' } });
  });

  it('logs a path like a probe but not one at info (a 404 there, a longer path)', async () => {
    expect([await get('/readyz/x'), await get('/healthzz')]).toEqual([404, 404]);
    await new Promise((r) => setImmediate(r));
    expect(requests()).toEqual([
      ['info', '/readyz/x', 404],
      ['info', '/healthzz', 404],
    ]);
  });
});
