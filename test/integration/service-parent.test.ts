// A service started by the local stack (`kinfer serve`, the demo: KINFER_EXIT_WITH_PARENT=1, stdin a
// pipe its parent never writes) stops when that parent is gone, whenever it goes: while the service
// still waits for its database as well as once it serves; and a SIGTERM stops it cleanly from the
// moment it listens. Real processes and a real PostgreSQL.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, constants, existsSync, mkdtempSync, openSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { ensureSigningKeys } from '../../src/cli/keys.ts';
import { freePort } from '../support/ports.ts';
import { createDatabase } from '../support/test-stack.ts';

const SERVICES = ['callback', 'predictor', 'controller'] as const;
/** The setting that names each service's port. */
const PORT_SETTING = { callback: 'KINFER_CALLBACK_PORT', predictor: 'KINFER_PREDICTOR_PORT', controller: 'KINFER_API_PORT' } as const;
type Ending = { code: number | null; signal: string | null } | 'still running';

/** Whether something accepts a TCP connection on the port (closed at once). */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('a service of the local stack stops with its parent', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  const started: ChildProcess[] = [];
  beforeAll(async () => {
    dir = mkdtempSync(join(process.env.KINFER_TEST_DIR!, 'service-parent-'));
    // The stack's own signing keys, made as `kinfer serve` makes them.
    const keys = await ensureSigningKeys(join(dir, 'keys'));
    env = {
      PATH: process.env.PATH,
      NODE_COMPILE_CACHE: process.env.NODE_COMPILE_CACHE,
      KINFER_EXIT_WITH_PARENT: '1',
      KINFER_HOME: dir,
      KINFER_TOKEN_PUBLIC_KEY_FILE: keys.publicKeyFile,
      KINFER_TOKEN_PRIVATE_KEY_FILE: keys.privateKeyFile,
      KINFER_ADMIN_TOKEN_FILE: join(dir, 'admin-token'),
      KINFER_CALLBACK_URL: 'http://127.0.0.1:9',
      KINFER_ARTIFACTS_URI: `file://${dir}/artifacts`,
      KINFER_API_PORT: '0',
      KINFER_CALLBACK_PORT: '0',
      KINFER_PREDICTOR_PORT: '0',
    };
  });
  afterEach(() => {
    for (const child of started.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });

  /** A service process with a pipe on stdin, as the stack starts it; `within(ms)`: how it ended by then. */
  function service(name: (typeof SERVICES)[number], extra: NodeJS.ProcessEnv) {
    const child = spawn(process.execPath, [`src/${name}/main.ts`], { env: { ...env, ...extra }, stdio: ['pipe', 'ignore', 'pipe'] });
    started.push(child);
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<Ending>((r) => child.once('exit', (code, signal) => r({ code, signal })));
    const within = (ms: number) => Promise.race([exited, new Promise<Ending>((r) => setTimeout(() => r('still running'), ms))]);
    return { child, within, stderr: () => stderr };
  }

  /** A database of its own for the service: made and migrated by a controller started for it. */
  async function databaseFor(name: (typeof SERVICES)[number], use: string): Promise<string> {
    const databaseUrl = await createDatabase(process.env.DATABASE_URL!, `kinfer_${use}_${name}_${randomUUID().slice(0, 8)}`);
    if (name !== 'controller') {
      // The controller makes the tables; the others only read them.
      const portFile = join(dir, `migrate-${use}-${name}.port`);
      const controller = service('controller', { DATABASE_URL: databaseUrl, KINFER_PORT_FILE: portFile });
      for (const deadline = Date.now() + 20_000; !existsSync(portFile) && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 50));
      // Signalled the moment it announced its port: it stops cleanly all the same.
      controller.child.kill('SIGTERM');
      expect(await controller.within(15_000)).toEqual({ code: 0, signal: null });
    }
    return databaseUrl;
  }

  it.each(SERVICES)(
    '%s: its parent gone while it waits for its database, it exits at once with 0',
    async (name) => {
      // Nobody listens on the port: it would wait ten minutes.
      const s = service(name, { DATABASE_URL: `postgres://kinfer@127.0.0.1:${await freePort()}/kinfer`, KINFER_DATABASE_WAIT_SECONDS: '600' });
      expect(await s.within(1500).then((e) => (e === 'still running' ? e : { ...e, stderr: s.stderr() }))).toBe('still running');
      s.child.stdin!.end();
      expect(await s.within(10_000)).toEqual({ code: 0, signal: null });
    },
    30_000,
  );

  it.each(SERVICES)(
    '%s: its parent gone once it serves, it stops with 0',
    async (name) => {
      const databaseUrl = await databaseFor(name, 'parent');
      const portFile = join(dir, `${name}.port`);
      const s = service(name, { DATABASE_URL: databaseUrl, KINFER_PORT_FILE: portFile });
      for (const deadline = Date.now() + 20_000; !existsSync(portFile) && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 50));
      expect({ listening: existsSync(portFile), stderr: existsSync(portFile) ? '' : s.stderr() }).toEqual({ listening: true, stderr: '' });
      expect(await s.within(500)).toBe('still running');
      s.child.stdin!.end();
      expect(await s.within(15_000)).toEqual({ code: 0, signal: null });
    },
    60_000,
  );

  it.each(SERVICES)(
    '%s: a SIGTERM once it listens, while it is still announcing its port, stops it with 0',
    async (name) => {
      // A launcher (kinfer serve, the tests) may stop a service the moment its port is announced,
      // so the clean stop must be in place before that. Held there, deterministically: the file
      // the port is first written to is a FIFO nobody reads yet.
      const databaseUrl = await databaseFor(name, 'held');
      const portFile = join(dir, `held-${name}.port`);
      execFileSync('mkfifo', [`${portFile}.partial`]);
      const port = await freePort();
      const s = service(name, { DATABASE_URL: databaseUrl, KINFER_PORT_FILE: portFile, [PORT_SETTING[name]]: String(port) });
      for (const deadline = Date.now() + 20_000; !(await accepts(port)) && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 50));
      expect(await accepts(port)).toBe(true);
      await new Promise((r) => setTimeout(r, 500));
      expect(await s.within(0)).toBe('still running');
      s.child.kill('SIGTERM');
      // Let the announcement go on (a reader of the FIFO), kept open until the service has ended.
      const reader = openSync(`${portFile}.partial`, constants.O_RDONLY | constants.O_NONBLOCK);
      try {
        expect(await s.within(15_000)).toEqual({ code: 0, signal: null });
      } finally {
        closeSync(reader);
      }
    },
    60_000,
  );
});
