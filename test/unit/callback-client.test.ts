import { createServer, type Server } from 'node:http';
import { CallbackClient, CallbackRejectedError, JobNoLongerActiveError } from '../../src/runner/io/callback-client.ts';

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

const client = () => new CallbackClient({ baseUrl: url, token: 'tok', traceId: 'tr', jobId: JOB, kind: 'test_run', retryBaseMs: 1 });

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

  it('gives done more attempts than progress', async () => {
    script = [503, 503, 503, 503, 503, 503];
    await expect(
      client().done({ status: 'failed', processed_images: 0, total_images: 0, failed_images: 0, results_path: null, timings: null, error_message: 'x' }),
    ).resolves.toMatchObject({ applied: true });
    expect(seen).toHaveLength(7);
    script = [503, 503, 503, 503, 503, 503];
    await expect(client().progress({ processed_images: 1 })).rejects.toBeInstanceOf(CallbackRejectedError);
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
