// Reports to the callback service. Transient failures (network, 5xx, 429) are retried with
// backoff; a 409 means the job is no longer active (cancelled elsewhere) and stops the runner.
import { Agent, request } from 'undici';
import { callbackPaths, CallbackReply, type DonePayload, type ImageResult, type JobKind, type ProgressPayload } from '../../contract/index.ts';

export class JobNoLongerActiveError extends Error {
  readonly code = 'JOB_NO_LONGER_ACTIVE';
  readonly status: string;
  constructor(status: string) {
    super(`the job is ${status}; stopping`);
    this.status = status;
    this.name = 'JobNoLongerActiveError';
  }
}

export class CallbackRejectedError extends Error {
  readonly code = 'CALLBACK_REJECTED';
  readonly path: string;
  readonly httpStatus: number;
  constructor(path: string, httpStatus: number, body: string) {
    super(`callback ${path} refused with HTTP ${httpStatus}: ${body.slice(0, 500)}`);
    this.path = path;
    this.httpStatus = httpStatus;
    this.name = 'CallbackRejectedError';
  }
}

export interface CallbackClientOptions {
  baseUrl: string;
  token: string;
  traceId: string;
  jobId: string;
  kind: JobKind;
  /** Attempts per call, the first included. */
  attempts?: number;
  /** Delay before the first retry; doubles each time. */
  retryBaseMs?: number;
}

export class CallbackClient {
  readonly #opts: Required<CallbackClientOptions>;
  readonly #agent = new Agent({ keepAliveTimeout: 10_000, connections: 4 });

  constructor(opts: CallbackClientOptions) {
    this.#opts = { attempts: 5, retryBaseMs: 200, ...opts };
  }

  progress(payload: ProgressPayload): Promise<CallbackReply> {
    return this.#post(callbackPaths.progress(this.#opts.jobId), payload);
  }

  imageResults(results: ImageResult[]): Promise<CallbackReply> {
    return this.#post(callbackPaths.imageResults(this.#opts.kind, this.#opts.jobId), { results });
  }

  /** Retried for longer (about a minute): a lost done turns a finished job into a failed one. */
  done(payload: DonePayload): Promise<CallbackReply> {
    return this.#post(callbackPaths.done(this.#opts.kind, this.#opts.jobId), payload, this.#opts.attempts + 4);
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }

  async #post(path: string, body: unknown, attempts = this.#opts.attempts): Promise<CallbackReply> {
    const url = new URL(path, this.#opts.baseUrl);
    const payload = JSON.stringify(body);
    let lastError: unknown;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        const res = await request(url, {
          method: 'POST',
          dispatcher: this.#agent,
          headers: {
            authorization: `Bearer ${this.#opts.token}`,
            'x-trace-id': this.#opts.traceId,
            'content-type': 'application/json',
          },
          body: payload,
          headersTimeout: 30_000,
          bodyTimeout: 30_000,
        });
        const text = await res.body.text();
        if (res.statusCode === 409) {
          const parsed = CallbackReply.safeParse(safeJson(text));
          throw new JobNoLongerActiveError(parsed.success ? parsed.data.status : 'no longer active');
        }
        if (res.statusCode >= 200 && res.statusCode < 300) return CallbackReply.parse(JSON.parse(text));
        if (res.statusCode !== 429 && res.statusCode < 500) throw new CallbackRejectedError(path, res.statusCode, text);
        lastError = new CallbackRejectedError(path, res.statusCode, text);
      } catch (err) {
        // Only permanent answers are thrown from the try block; network errors are retried.
        if (err instanceof JobNoLongerActiveError || err instanceof CallbackRejectedError) throw err;
        lastError = err;
      }
      if (attempt < attempts) await sleep(Math.min(this.#opts.retryBaseMs * 2 ** (attempt - 1), 15_000));
    }
    throw lastError;
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
