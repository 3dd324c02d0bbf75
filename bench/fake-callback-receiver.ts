// The runner as the benchmarks start it (the real process, with the runner's Node flags and process
// environment), and the callback service it reports to: a FAKE (they measure the runner alone).
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { RUNNER_COMPILE_CACHE_ENV, RUNNER_NODE_FLAGS, RUNNER_PROCESS_ENV } from '../src/contract/index.ts';

/**
 * Host variables the runner gets: PATH and Node's compile cache, as the subprocess tier passes it
 * through and the image sets it. Nothing else of the shell's: a setting to try goes in `env`.
 */
const HOST_ENV = ['PATH', ...RUNNER_COMPILE_CACHE_ENV] as const;

/** Runs one runner process with `env` (beside the host's HOST_ENV and the benchmarks' trace id and token); its exit code. */
export function runRunnerProcess(env: Record<string, string | undefined>): Promise<number | null> {
  const host = Object.fromEntries(HOST_ENV.filter((k) => process.env[k] !== undefined).map((k) => [k, process.env[k]]));
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...RUNNER_NODE_FLAGS, fileURLToPath(new URL('../src/runner/main.ts', import.meta.url))], {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...host, ...RUNNER_PROCESS_ENV, TRACE_ID: 'bench', CALLBACK_TOKEN: 'bench', ...env },
    });
    child.on('close', resolve);
  });
}

/**
 * A benchmark's `--env KEY=VALUE,...` as a runner environment. The runner gets only what the
 * benchmark passes (not the shell's variables), so this is how an experiment sets one.
 */
export function runnerEnvArg(arg: string): Record<string, string> {
  return Object.fromEntries(
    arg
      .split(',')
      .filter(Boolean)
      .map((kv) => {
        const at = kv.indexOf('=');
        if (at < 1) throw new Error(`--env: "${kv}" is not KEY=VALUE`);
        return [kv.slice(0, at), kv.slice(at + 1)];
      }),
  );
}

/** A FAKE callback service: accepts every callback and keeps the done payload. */
export async function fakeCallbackReceiver() {
  let done: any;
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      if (req.url?.endsWith('/done')) done = JSON.parse(body);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"running","applied":true}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return { url: `http://127.0.0.1:${port}`, done: () => done, close: () => new Promise((r) => server.close(r)) };
}
