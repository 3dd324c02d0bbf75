// Reports to the callback service. Transient failures (network, 5xx, 429) are retried with
// backoff for minutes (a rolling restart of the callback service, a database failover), while
// the pipeline waits: one results batch in flight at most, so nothing piles up in memory and
// nothing is lost. Once the runner is told to stop (its `signal`), every call but the final report
// gives up at once (what it carried is in a stored part, which a resumed runner sends again), and
// the final report gets `reportAfterStopMs` more: a stopped container has a short grace period.
// A 409 means the job is no longer active (cancelled elsewhere) and stops the runner. A heartbeat
// repeats the last progress while nothing else is sent, so that the controller can tell a stopped
// runner from a slow one.
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import {
  callbackPaths,
  CallbackReply,
  InputConfig,
  ShardDoneReply,
  type DonePayload,
  type ImageResult,
  type JobKind,
  type ProgressPayload,
  type ShardDonePayload,
} from '../../contract/index.ts';

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
  /** How long a call is retried through transient failures. */
  retryForMs?: number;
  /** The same for `done`. */
  doneRetryForMs?: number;
  /** Delay before the first retry; doubles each time, up to `retryMaxMs`. */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** Called once per call that starts retrying and once when it gets through (logs). */
  onRetry?: (path: string, error: unknown, retryingForMs: number) => void;
  /** The runner's stop: calls other than `done` then stop retrying and throw its reason. */
  signal?: AbortSignal | undefined;
  /** How long `done` is still retried after the stop (at most; it keeps its own limit too). */
  reportAfterStopMs?: number;
}

export class CallbackOutageError extends Error {
  readonly code = 'CALLBACK_UNREACHABLE';
  constructor(path: string, ms: number, cause: unknown) {
    super(`the callback service did not accept ${path} for ${Math.round(ms / 1000)} s (last error: ${(cause as Error)?.message ?? cause})`, { cause });
    this.name = 'CallbackOutageError';
  }
}

export class CallbackClient {
  readonly #opts: Required<Omit<CallbackClientOptions, 'signal'>>;
  readonly #signal: AbortSignal | undefined;
  #stoppedAt: number | undefined;
  readonly #agent = new Agent({ keepAliveTimeout: 10_000, connections: 4 });
  #lastProgress: ProgressPayload = { processed_images: 0, failed_images: 0 };
  #lastSentAt = Date.now();
  #heartbeat: NodeJS.Timeout | undefined;

  constructor(opts: CallbackClientOptions) {
    const { signal, ...rest } = opts;
    this.#opts = {
      retryForMs: 600_000,
      doneRetryForMs: 1_800_000,
      reportAfterStopMs: 20_000,
      retryBaseMs: 200,
      retryMaxMs: 5_000,
      onRetry: () => undefined,
      ...rest,
    };
    this.#signal = signal;
    signal?.addEventListener('abort', () => (this.#stoppedAt = Date.now()), { once: true });
  }

  progress(payload: ProgressPayload): Promise<CallbackReply> {
    this.#lastProgress = payload;
    return this.#post(callbackPaths.progress(this.#opts.jobId), payload);
  }

  imageResults(results: ImageResult[]): Promise<CallbackReply> {
    return this.#post(callbackPaths.imageResults(this.#opts.kind, this.#opts.jobId), { results });
  }

  /**
   * Retried for longer: a lost done turns a finished job into a failed one. Sent after the stop
   * too (it says the job was terminated), for `reportAfterStopMs` from the stop.
   */
  done(payload: DonePayload): Promise<CallbackReply> {
    this.stopHeartbeat();
    return this.#post(callbackPaths.done(this.#opts.kind, this.#opts.jobId), payload, this.#opts.doneRetryForMs, false);
  }

  /** This shard's images are all reported; the reply says whether it is the last shard to finish (it then scores the job). */
  async shardDone(shard: number, payload: ShardDonePayload): Promise<ShardDoneReply> {
    const text = await this.#send(
      'POST',
      callbackPaths.shardDone(this.#opts.kind, this.#opts.jobId, shard),
      JSON.stringify(payload),
      this.#opts.doneRetryForMs,
    );
    return ShardDoneReply.parse(JSON.parse(text));
  }

  /** An inference job's input, when it was too long for the environment (INPUT_CONFIG_SOURCE=callback). */
  async inputConfig(): Promise<InputConfig> {
    const text = await this.#send('GET', callbackPaths.input(this.#opts.jobId), undefined, this.#opts.retryForMs);
    return InputConfig.parse((JSON.parse(text) as { input_config: unknown }).input_config);
  }

  /**
   * Repeats the last progress every `everyMs` while no other call got through in that time.
   * `onStopped` hears that the job is no longer active (cancelled, or failed for want of progress).
   */
  startHeartbeat(everyMs: number, onStopped: (err: JobNoLongerActiveError) => void, onError: (err: unknown) => void): void {
    let inFlight = false;
    this.#heartbeat = setInterval(
      () => {
        if (inFlight || Date.now() - this.#lastSentAt < everyMs) return;
        inFlight = true;
        this.#post(callbackPaths.progress(this.#opts.jobId), this.#lastProgress, everyMs)
          .catch((err: unknown) => {
            if (err instanceof JobNoLongerActiveError) onStopped(err);
            else if (!this.#signal?.aborted) onError(err);
          })
          .finally(() => {
            inFlight = false;
          });
      },
      Math.max(10, Math.floor(everyMs / 4)),
    );
    this.#heartbeat.unref();
  }

  stopHeartbeat(): void {
    clearInterval(this.#heartbeat);
  }

  async close(): Promise<void> {
    this.stopHeartbeat();
    await this.#agent.close();
  }

  async #post(path: string, body: unknown, retryForMs = this.#opts.retryForMs, stoppable = true): Promise<CallbackReply> {
    const text = await this.#send('POST', path, JSON.stringify(body), retryForMs, stoppable);
    return CallbackReply.parse(JSON.parse(text));
  }

  /**
   * The body of a 2xx answer; retries transient failures for `retryForMs`, throws permanent ones at
   * once. A `stoppable` call throws the stop signal's reason as soon as it fires, in flight or
   * waiting; another is retried until `reportAfterStopMs` after the stop at the latest.
   */
  async #send(method: 'GET' | 'POST', path: string, payload: string | undefined, retryForMs: number, stoppable = true): Promise<string> {
    const url = new URL(path, this.#opts.baseUrl);
    const started = Date.now();
    const signal = stoppable ? this.#signal : undefined;
    const deadline = () => Math.min(started + retryForMs, this.#stoppedAt === undefined ? Infinity : this.#stoppedAt + this.#opts.reportAfterStopMs);
    let lastError: unknown;
    for (let attempt = 1; ; attempt++) {
      signal?.throwIfAborted();
      // A server that takes the request and never answers must not outlast the deadline either.
      const timeout = Math.max(1_000, Math.min(30_000, deadline() - Date.now()));
      try {
        const res = await request(url, {
          method,
          dispatcher: this.#agent,
          signal,
          headers: {
            authorization: `Bearer ${this.#opts.token}`,
            'x-trace-id': this.#opts.traceId,
            ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
          },
          body: payload,
          headersTimeout: timeout,
          bodyTimeout: timeout,
        });
        const text = await res.body.text();
        if (res.statusCode === 409) {
          const parsed = CallbackReply.safeParse(safeJson(text));
          throw new JobNoLongerActiveError(parsed.success ? parsed.data.status : 'no longer active');
        }
        if (res.statusCode >= 200 && res.statusCode < 300) {
          this.#lastSentAt = Date.now();
          if (attempt > 1) this.#opts.onRetry(path, undefined, Date.now() - started);
          return text;
        }
        if (res.statusCode !== 429 && res.statusCode < 500) throw new CallbackRejectedError(path, res.statusCode, text);
        lastError = new CallbackRejectedError(path, res.statusCode, text);
      } catch (err) {
        // Only permanent answers are thrown from the try block; network errors are retried.
        if (err instanceof JobNoLongerActiveError || err instanceof CallbackRejectedError) throw err;
        signal?.throwIfAborted();
        lastError = err;
      }
      const now = Date.now();
      if (now >= deadline()) throw new CallbackOutageError(path, now - started, lastError);
      if (attempt === 1) this.#opts.onRetry(path, lastError, 0);
      const delay = Math.min(this.#opts.retryBaseMs * 2 ** (attempt - 1), this.#opts.retryMaxMs, deadline() - now);
      // Cut short when the signal fires (sleep's AbortError then gives way to the signal's reason).
      await sleep(Math.max(delay, 1), undefined, { signal }).catch(() => signal!.throwIfAborted());
    }
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
