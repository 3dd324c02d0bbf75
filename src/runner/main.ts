// Runner entrypoint: configuration from the environment only, one job, then exit.
// Exit codes: 0 completed or stopped on request, 1 failed (reported), 2 configuration invalid,
// 143 terminated by SIGTERM (reported as failed unless the job had already ended).
import { errorCodeOf, jobArtifactsUri, jobKindOf, parseRunnerEnv, RunnerConfigError, type DonePayload, type RunnerEnv } from '../contract/index.ts';
import { CallbackClient, JobNoLongerActiveError } from './io/callback-client.ts';
import { ObjectStore } from './io/object-store.ts';
import { removeParts, runJob } from './job.ts';
import { runnerLogger } from './log.ts';

class TerminatedError extends Error {
  constructor(signal: string) {
    super(`runner received ${signal}`);
    this.name = 'TerminatedError';
  }
}

async function main(): Promise<number> {
  let env: RunnerEnv;
  try {
    env = parseRunnerEnv(process.env);
  } catch (err) {
    if (!(err instanceof RunnerConfigError)) throw err;
    runnerLogger(process.env.JOB_ID, process.env.TRACE_ID).fatal({ problems: err.problems }, err.message);
    process.stderr.write(`${err.message}\n`);
    return 2;
  }
  const log = runnerLogger(env.JOB_ID, env.TRACE_ID);
  // Stops the job on SIGTERM/SIGINT or when the job is no longer active; the callbacks in flight give up with it.
  const abort = new AbortController();
  const callbacks = new CallbackClient({
    baseUrl: env.BACKEND_BASE_URL,
    token: env.CALLBACK_TOKEN,
    traceId: env.TRACE_ID,
    jobId: env.JOB_ID,
    kind: jobKindOf(env.INFERENCE_TYPE),
    retryForMs: env.CALLBACK_RETRY_SECONDS * 1000,
    doneRetryForMs: env.CALLBACK_DONE_RETRY_SECONDS * 1000,
    signal: abort.signal,
    // Stopped: the grace period before a SIGKILL is short; report within it, or exit anyway.
    reportAfterStopMs: env.TERMINATION_REPORT_SECONDS * 1000,
    onRetry: (path, error, ms) =>
      error === undefined
        ? log.info({ path, retried_ms: ms }, 'callback service reachable again')
        : log.warn({ path, err: error }, `callback service unavailable; retrying for up to ${env.CALLBACK_RETRY_SECONDS} s`),
  });
  const store = new ObjectStore({
    endpoint: env.S3_ENDPOINT,
    region: env.AWS_REGION,
    accessKeyId: env.AWS_ACCESS_KEY_ID,
    secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
    buckets: env.S3_BUCKET_CREDENTIALS,
  });
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.once(sig, () => {
      log.warn({ signal: sig }, 'stopping on signal');
      abort.abort(new TerminatedError(sig));
    });
  }
  callbacks.startHeartbeat(
    env.HEARTBEAT_SECONDS * 1000,
    (stopped) => abort.abort(stopped),
    (err) => log.warn({ err }, 'heartbeat not delivered'),
  );

  const counts = { processed_images: 0, total_images: 0, failed_images: 0, results_path: null, timings: null };
  let done: DonePayload;
  let code: number;
  try {
    if (env.INPUT_CONFIG_SOURCE === 'callback') env = { ...env, INPUT_CONFIG: await callbacks.inputConfig() };
    const outcome = await runJob({ env, store, callbacks, log, signal: abort.signal });
    if (outcome === null) {
      // A shard that finished while others still run: the last one reports the job.
      await callbacks.close();
      return 0;
    }
    done = outcome;
    code = 0;
  } catch (err) {
    if (err instanceof JobNoLongerActiveError) {
      log.info({ status: err.status }, 'job is no longer active; stopped');
      await callbacks.close();
      return 0;
    }
    if (err instanceof TerminatedError) {
      // The runner cannot tell why it was stopped. A user's cancel is already recorded (this
      // report then changes nothing); a deadline, eviction or shutdown must show as a failure.
      done = {
        status: 'failed',
        ...counts,
        error_message: `${err.message} before finishing (cancelled, past its deadline, evicted or shut down)`,
        error_code: 'TERMINATED',
      };
      code = 143;
    } else {
      const message = err instanceof Error ? `${err.name === 'Error' ? '' : `${err.name}: `}${err.message}` : String(err);
      log.error({ err }, 'job failed');
      done = { status: 'failed', ...counts, error_message: message.slice(0, 8000), error_code: errorCodeOf(err) };
      code = 1;
    }
  }
  try {
    await callbacks.done(done);
    if (done.status === 'completed') {
      // Recorded: the parts are in images.jsonl and the metrics now. Leaving them costs only space.
      await removeParts(store, jobArtifactsUri(env.ARTIFACTS_URI, jobKindOf(env.INFERENCE_TYPE), env.JOB_ID)).catch((err: unknown) =>
        log.warn({ err }, 'could not remove the job parts'),
      );
    }
  } catch (err) {
    if (!(err instanceof JobNoLongerActiveError)) {
      log.error({ err }, 'could not report completion');
      // stderr is what the executor quotes when it fails a job whose runner never reported.
      process.stderr.write(
        `could not report completion (${done.status}${done.status === 'completed' ? '' : `: ${done.error_message}`}): ${(err as Error).message}${(err as Error).cause ? ` (${String((err as { cause?: unknown }).cause)})` : ''}\n`,
      );
      code = code === 0 ? 1 : code;
    }
  }
  await callbacks.close();
  return code;
}

// Exit explicitly: pooled S3 and HTTP sockets must not keep a finished runner alive.
process.exit(await main());
