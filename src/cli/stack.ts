// Starts the controller and callback service as two processes, on embedded defaults unless told
// otherwise: a real Postgres under KINFER_HOME (or DATABASE_URL), file:// artifacts under
// KINFER_HOME (or KINFER_ARTIFACTS_URI), the subprocess tier. Used by `kinfer serve` and the demo.
// The launcher supervises its services: one that dies is started again with backoff, on the same
// port; only a service that keeps dying (RESTART_LIMIT in RESTART_WINDOW_MS) ends the stack.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { EmbeddedDatabase } from '../local/embedded-postgres.ts';
import { stopChild } from '../process/local-processes.ts';
import { ensureSigningKeys } from './keys.ts';
import { LastWords } from './last-words.ts';

export interface StackOptions {
  home: string;
  apiPort: number;
  callbackPort: number;
  /** The predictor service (online predictions); 0 picks a free port. */
  predictorPort?: number;
  pgPort: number;
  env: NodeJS.ProcessEnv;
  /** Where service logs go: inherited stdio, or files under KINFER_HOME/logs. */
  serviceLogs: 'inherit' | 'files';
  /** What the supervisor does, for people (default: stderr). */
  onEvent?: (line: string) => void;
  /** A service kept dying and the stack was stopped; `kinfer serve` exits non-zero. */
  onGiveUp?: (err: Error) => void;
  /**
   * Aborted during start-up (Ctrl-C): what has started is stopped, and startStack rejects with
   * StackStartInterrupted. Heard between steps and while a service is awaited.
   */
  signal?: AbortSignal;
}

/** startStack's answer to its signal: everything it had started is stopped. */
export class StackStartInterrupted extends Error {
  constructor() {
    super('start-up interrupted; everything it had started is stopped');
    this.name = 'StackStartInterrupted';
  }
}
const interruptedBy = (signal: AbortSignal | undefined) => {
  if (signal?.aborted) throw new StackStartInterrupted();
};

/** Restarts allowed per service within the window before the supervisor gives up. */
export const RESTART_LIMIT = 5;
export const RESTART_WINDOW_MS = 60_000;
const restartDelayMs = (attempt: number) => Math.min(500 * 2 ** attempt, 15_000);

export interface Stack {
  apiUrl: string;
  callbackUrl: string;
  /** The predictor service, `.../api/v1`. */
  predictorUrl: string;
  artifactsUri: string;
  home: string;
  /** The controller's environment, to start more replicas of it. */
  controllerEnv: NodeJS.ProcessEnv;
  /** Stops the controller with `signal` (SIGKILL simulates a crash), runs `whileDown`, starts a new one. */
  restartController(signal: NodeJS.Signals, whileDown?: () => void | Promise<void>): Promise<void>;
  /** The admin API token the controller made on first start ($KINFER_HOME/admin-token). */
  adminToken: string;
  /** The process id of a service's current process (fault injection in tests). */
  pidOf(name: 'controller' | 'callback' | 'predictor'): number | undefined;
  /** The embedded Postgres, when the stack started one (fault injection in tests). */
  database: EmbeddedDatabase | undefined;
  stop(): Promise<void>;
}

const entry = (rel: string) => fileURLToPath(new URL(rel, import.meta.url));

/** The port a service announced in its port file, once it is listening. */
async function announcedPort(file: string, child: ChildProcess, name: string, signal?: AbortSignal, timeoutMs = 30_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    interruptedBy(signal);
    if (child.exitCode !== null) throw new Error(`${name} exited with code ${child.exitCode} during start-up (see its log)`);
    const text = await readFile(file, 'utf8').catch(() => '');
    if (/^\d+\n$/.test(text)) return Number(text);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${name} did not start listening within ${timeoutMs} ms`);
}

async function waitReady(url: string, child: ChildProcess, name: string, signal?: AbortSignal, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    interruptedBy(signal);
    if (child.exitCode !== null) throw new Error(`${name} exited with code ${child.exitCode} during start-up (see its log)`);
    try {
      const res = await fetch(`${url}/readyz`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${name} not ready at ${url} after ${timeoutMs} ms`);
}

/** The embedded default: a development install has it (a devDependency); the image does not. */
async function embeddedPostgres(dataDir: string, port: number): Promise<EmbeddedDatabase> {
  let local: typeof import('../local/embedded-postgres.ts');
  try {
    local = await import('../local/embedded-postgres.ts');
  } catch (err) {
    throw new Error(`no DATABASE_URL, and the embedded PostgreSQL of a development install is not here (${(err as Error).message}): set DATABASE_URL`);
  }
  return local.startEmbeddedPostgres({ dataDir, port, persistent: true });
}

export async function startStack(opts: StackOptions): Promise<Stack> {
  const home = resolve(opts.home);
  await mkdir(join(home, 'logs'), { recursive: true });
  let db: EmbeddedDatabase | undefined;
  let databaseUrl: string;
  let keys: Awaited<ReturnType<typeof ensureSigningKeys>>;
  try {
    databaseUrl = opts.env.DATABASE_URL ?? (db = await embeddedPostgres(join(home, 'postgres'), opts.pgPort)).url;
    interruptedBy(opts.signal);
    keys = await ensureSigningKeys(join(home, 'keys'));
  } catch (err) {
    await db?.stop();
    throw err;
  }
  const artifactsUri = opts.env.KINFER_ARTIFACTS_URI ?? pathToFileURL(join(home, 'artifacts')).href;
  const shared = { ...opts.env, DATABASE_URL: databaseUrl, KINFER_HOME: home };
  const children = new Set<ChildProcess>();
  const lastWords = new WeakMap<ChildProcess, LastWords>();
  const start = (name: string, file: string, env: NodeJS.ProcessEnv) => {
    // stdin is a pipe we never write: it closes when this process dies, and the service stops.
    const child = spawn(process.execPath, [file], {
      env: { ...env, KINFER_EXIT_WITH_PARENT: '1', KINFER_PORT_FILE: portFile(name) },
      stdio: opts.serviceLogs === 'inherit' ? ['pipe', 'inherit', 'inherit'] : ['pipe', 'pipe', 'pipe'],
    });
    if (opts.serviceLogs === 'files') {
      const out = createWriteStream(join(home, 'logs', `${name}.log`), { flags: 'a' });
      child.stdout!.pipe(out);
      child.stderr!.pipe(out);
      // Its last words, for the supervisor to say why it died: the log file is not on screen.
      const words = new LastWords();
      child.stdout!.on('data', (chunk: Buffer) => words.stdout(chunk));
      child.stderr!.on('data', (chunk: Buffer) => words.stderr(chunk));
      lastWords.set(child, words);
    }
    children.add(child);
    child.once('exit', () => children.delete(child));
    return child;
  };
  const portFile = (name: string) => join(home, 'run', `${name}.port`);
  await mkdir(join(home, 'run'), { recursive: true });
  /** Starts a service and waits until it is ready; returns its URL (port 0: the one it got). */
  const startService = async (name: string, file: string, env: NodeJS.ProcessEnv, signal?: AbortSignal): Promise<{ child: ChildProcess; url: string }> => {
    await rm(portFile(name), { force: true });
    const child = start(name, file, env);
    const url = `http://127.0.0.1:${await announcedPort(portFile(name), child, name, signal)}`;
    await waitReady(url, child, name, signal);
    return { child, url };
  };
  const onEvent = opts.onEvent ?? ((line: string) => process.stderr.write(`${line}\n`));
  let stopped = false;
  const stop = async () => {
    stopped = true;
    // The controller first: a runner it stops on its way out (a cancelled job's) still has the
    // callback service for its last report, and the controller waits for it.
    const controller = supervised.get('controller')?.child;
    if (controller) await stopChild(controller, 'SIGTERM');
    await Promise.all([...children].map((c) => stopChild(c, 'SIGTERM')));
    await db?.stop();
  };
  /** Services to start again when they die: their latest process and their recent restarts. */
  const supervised = new Map<string, { file: string; env: NodeJS.ProcessEnv; child: ChildProcess; expected: boolean; restarts: number[] }>();
  const supervise = (name: string, file: string, env: NodeJS.ProcessEnv, child: ChildProcess) => {
    const service = { file, env, child, expected: false, restarts: [] as number[] };
    supervised.set(name, service);
    const watch = (c: ChildProcess) =>
      c.once('exit', (code, signal) => {
        if (stopped || service.expected || service.child !== c) return;
        // Its last lines may still be in the pipes at 'exit': read them ('close'), briefly.
        void new Promise((r) => {
          c.once('close', r);
          setTimeout(r, 1000).unref();
        }).then(() => {
          if (stopped || service.expected) return;
          const words = lastWords.get(c)?.summary();
          return restart(`${signal ? `was killed by ${signal}` : `exited with code ${code}`}${words ? ` (${words})` : ''}`);
        });
      });
    const restart = async (why: string): Promise<void> => {
      const now = Date.now();
      service.restarts = [...service.restarts.filter((t) => now - t < RESTART_WINDOW_MS), now];
      if (service.restarts.length > RESTART_LIMIT) {
        const err = new Error(`${name} ${why}, and died ${RESTART_LIMIT + 1} times within ${RESTART_WINDOW_MS / 1000} s: giving up`);
        onEvent(`kinfer: ${err.message}`);
        await stop();
        opts.onGiveUp?.(err);
        return;
      }
      const delay = restartDelayMs(service.restarts.length - 1);
      onEvent(`kinfer: ${name} ${why}; restarting it in ${delay / 1000} s`);
      await new Promise((r) => setTimeout(r, delay));
      if (stopped || service.expected) return;
      try {
        const { child: next } = await startService(name, file, env);
        service.child = next;
        watch(next);
        onEvent(`kinfer: ${name} is back`);
      } catch (err) {
        await restart(`did not come back (${(err as Error).message})`);
      }
    };
    watch(child);
  };
  let controller: ChildProcess;
  let callbackUrl: string;
  let predictorUrl: string;
  let apiUrl: string;
  let controllerEnv: NodeJS.ProcessEnv;
  let adminToken: string;
  try {
    // The callback service first: the controller must know where runners call back.
    const callbackEnv: NodeJS.ProcessEnv = { ...shared, KINFER_CALLBACK_PORT: String(opts.callbackPort), KINFER_TOKEN_PUBLIC_KEY_FILE: keys.publicKeyFile };
    let callback: ChildProcess;
    ({ child: callback, url: callbackUrl } = await startService('callback', entry('../callback/main.ts'), callbackEnv, opts.signal));
    // Restarted, it comes back on the same port: runners keep their URL.
    callbackEnv.KINFER_CALLBACK_PORT = new URL(callbackUrl).port;
    supervise('callback', entry('../callback/main.ts'), callbackEnv, callback);
    controllerEnv = {
      ...shared,
      // The first admin token, made on first start and kept for the CLI on this machine.
      KINFER_ADMIN_TOKEN_FILE: opts.env.KINFER_ADMIN_TOKEN_FILE ?? join(home, 'admin-token'),
      // Jobs read S3 (any bucket unless told otherwise) and local files under KINFER_HOME only.
      KINFER_ALLOWED_URIS: [opts.env.KINFER_ALLOWED_URIS ?? 's3://', pathToFileURL(home).href].join(','),
      KINFER_API_PORT: String(opts.apiPort),
      KINFER_CALLBACK_URL: callbackUrl,
      KINFER_ARTIFACTS_URI: artifactsUri,
      KINFER_TOKEN_PRIVATE_KEY_FILE: keys.privateKeyFile,
    };
    // The predictor before the controller, which forwards /api/v1/predict to it (the dashboard's
    // one origin); it reads what the controller's jobs read, with the same tokens and allow-list.
    const predictorEnv: NodeJS.ProcessEnv = {
      ...shared,
      KINFER_PREDICTOR_PORT: String(opts.predictorPort ?? 0),
      KINFER_ALLOWED_URIS: controllerEnv.KINFER_ALLOWED_URIS,
    };
    let predictor: ChildProcess;
    ({ child: predictor, url: predictorUrl } = await startService('predictor', entry('../predictor/main.ts'), predictorEnv, opts.signal));
    predictorEnv.KINFER_PREDICTOR_PORT = new URL(predictorUrl).port;
    supervise('predictor', entry('../predictor/main.ts'), predictorEnv, predictor);
    controllerEnv.KINFER_PREDICTOR_URL = predictorUrl;
    ({ child: controller, url: apiUrl } = await startService('controller', entry('../controller/main.ts'), controllerEnv, opts.signal));
    // A restarted controller comes back on the same port: clients keep their URL.
    controllerEnv.KINFER_API_PORT = new URL(apiUrl).port;
    supervise('controller', entry('../controller/main.ts'), controllerEnv, controller);
    adminToken = (await readFile(controllerEnv.KINFER_ADMIN_TOKEN_FILE!, 'utf8')).trim();
    interruptedBy(opts.signal);
  } catch (err) {
    await stop();
    throw err;
  }
  /** A deliberate restart (tests): the supervisor stands aside while the controller is down. */
  const restartController = async (signal: NodeJS.Signals, whileDown?: () => void | Promise<void>) => {
    const service = supervised.get('controller')!;
    service.expected = true;
    await stopChild(service.child, signal);
    await whileDown?.();
    const { child } = await startService('controller', entry('../controller/main.ts'), controllerEnv);
    supervise('controller', entry('../controller/main.ts'), controllerEnv, child);
  };
  const pidOf = (name: 'controller' | 'callback' | 'predictor') => supervised.get(name)?.child.pid;
  return {
    apiUrl: `${apiUrl}/api/v1`,
    callbackUrl,
    predictorUrl: `${predictorUrl}/api/v1`,
    artifactsUri,
    home,
    controllerEnv,
    restartController,
    pidOf,
    adminToken,
    database: db,
    stop,
  };
}
