import { createServer, type Server } from 'node:http';
import { CallbackClient, CallbackOutageError, CallbackRejectedError, JobNoLongerActiveError } from '../../src/runner/io/callback-client.ts';

const JOB = '6f1c2d4e-8a3b-4c5d-9e7f-0a1b2c3d4e5f';
let server: Server;
let url: string;
/** Status codes to answer, in order; then 200. */
let script: number[] = [];
const seen: Array<{ path: string; auth: string | undefined; trace: string | undefined }> = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push({ path: req.url!, auth: req.headers.authorization, trace: req.headers['x-trace-id'] as string });
    const status = script.shift() ?? 200;
    const body = status === 409 ? { status: 'cancelled', applied: false } : status === 200 ? { status: 'running', applied: true } : { error: 'x' };
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(() => new Promise((r) => server.close(r)));
beforeEach(() => {
  seen.length = 0;
});

const client = (opts: { retryForMs?: number; doneRetryForMs?: number; signal?: AbortSignal } = {}) =>
  new CallbackClient({ baseUrl: url, token: 'tok', traceId: 'tr', jobId: JOB, kind: 'test_run', retryBaseMs: 1, retryMaxMs: 5, ...opts });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('runner callback client', () => {
  it('sends the bearer token and trace id to the contract path', async () => {
    await client().progress({ processed_images: 1 });
    expect(seen).toEqual([{ path: `/api/v1/inference/${JOB}/progress`, auth: 'Bearer tok', trace: 'tr' }]);
  });

  it('retries 5xx and 429 until it gets through', async () => {
    script = [503, 502, 429];
    await expect(client().progress({ processed_images: 1 })).resolves.toEqual({ status: 'running', applied: true });
    expect(seen).toHaveLength(4);
  });

  it('retries for a time, and done for longer than progress; an outage past it says so', async () => {
    script = Array(20).fill(503);
    const done = { status: 'failed', processed_images: 0, total_images: 0, failed_images: 0, results_path: null, timings: null, error_message: 'x' } as const;
    await expect(client({ retryForMs: 30, doneRetryForMs: 60_000 }).done(done)).resolves.toMatchObject({ applied: true });
    expect(seen).toHaveLength(21);
    script = Array(100_000).fill(503);
    const started = Date.now();
    const err = await client({ retryForMs: 150 })
      .progress({ processed_images: 1 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CallbackOutageError);
    expect((err as Error).message).toMatch(/did not accept .*progress for 0 s \(last error: callback .* refused with HTTP 503/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    script = [];
  });

  it('rides out a callback service that is down, then back on the same port', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as { port: number }).port;
    await new Promise((r) => probe.close(r));
    const down = new CallbackClient({
      baseUrl: `http://127.0.0.1:${port}`,
      token: 't',
      traceId: 't',
      jobId: JOB,
      kind: 'test_run',
      retryBaseMs: 20,
      retryMaxMs: 50,
    });
    const call = down.progress({ processed_images: 3, total_images: 9 });
    await sleep(400);
    let got: unknown;
    const back = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c));
      req.on('end', () => {
        got = JSON.parse(body);
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'running', applied: true }));
      });
    });
    await new Promise<void>((r) => back.listen(port, '127.0.0.1', r));
    await expect(call).resolves.toEqual({ status: 'running', applied: true });
    expect(got).toEqual({ processed_images: 3, total_images: 9 });
    await down.close();
    await new Promise((r) => back.close(r));
  });

  it('heartbeats the last progress while nothing else is sent, and hears a 409 as a stop', async () => {
    const c = client();
    await c.progress({ processed_images: 7, total_images: 10, failed_images: 1 });
    seen.length = 0;
    const stopped: unknown[] = [];
    c.startHeartbeat(
      40,
      (err) => stopped.push(err),
      () => undefined,
    );
    await sleep(200);
    expect(seen.length).toBeGreaterThanOrEqual(2);
    expect(seen.every((s) => s.path === `/api/v1/inference/${JOB}/progress`)).toBe(true);
    script = [409];
    await sleep(150);
    c.stopHeartbeat();
    expect(stopped[0]).toEqual(new JobNoLongerActiveError('cancelled'));
    // A heartbeat already on the wire when it stopped may still arrive; none may start after.
    await sleep(40);
    const count = seen.length;
    await sleep(120);
    expect(seen.length).toBe(count);
    script = [];
  });

  it("gives up retrying when the runner is stopped, with the stop's reason; the final report still goes", async () => {
    script = Array(100_000).fill(503);
    const stop = new AbortController();
    const c = client({ retryForMs: 600_000, doneRetryForMs: 600_000, signal: stop.signal });
    const results = c.imageResults([]).catch((e: unknown) => e);
    await sleep(100);
    const tried = seen.length;
    expect(tried).toBeGreaterThan(1);
    const reason = new Error('runner received SIGTERM');
    const stoppedAt = Date.now();
    stop.abort(reason);
    // Thrown as it is: the runner tells a termination from a failure by it.
    expect(await results).toBe(reason);
    expect(Date.now() - stoppedAt).toBeLessThan(1000);
    await sleep(50);
    expect(seen.length).toBeLessThanOrEqual(tried + 1);
    // A call made after the stop is not sent at all; the final report is, and retried.
    const count = seen.length;
    await expect(c.progress({ processed_images: 1 })).rejects.toBe(reason);
    expect(seen.length).toBe(count);
    script = [503, 503];
    const done = { status: 'failed', processed_images: 0, total_images: 0, failed_images: 0, results_path: null, timings: null, error_message: 'x' } as const;
    await expect(c.done(done)).resolves.toMatchObject({ applied: true });
    expect(seen.slice(count).map((s) => s.path)).toEqual(Array(3).fill(`/api/v1/test-runs/${JOB}/done`));
    script = [];
  });

  it('stops on 409: the job is no longer active', async () => {
    script = [409];
    await expect(client().progress({ processed_images: 1 })).rejects.toEqual(new JobNoLongerActiveError('cancelled'));
  });

  it('does not retry a refusal (4xx)', async () => {
    script = [422];
    await expect(client().imageResults([])).rejects.toBeInstanceOf(CallbackRejectedError);
    expect(seen).toHaveLength(1);
  });
});
