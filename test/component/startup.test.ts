// Start-up refuses a bad configuration with one clear message and a non-zero exit, before it waits
// on anything; the embedded Postgres is locked down (random passwords in a 0600 file, loopback
// only, no Unix socket, services not superuser).
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, statSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { credentialsFile, startEmbeddedPostgres } from '../../src/local/embedded-postgres.ts';
import { tokenKeyPair } from '../support/in-process.ts';

const entry = (rel: string) => fileURLToPath(new URL(`../../src/${rel}`, import.meta.url));

/** Runs a service to its exit: code, the fatal line's message, and how long it took. */
function runService(file: string, env: Record<string, string>): Promise<{ code: number | null; message: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [file], { env: { PATH: process.env.PATH!, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c));
    child.stderr.on('data', (c: Buffer) => (out += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const fatal = out
        .split('\n')
        .filter(Boolean)
        .map((l) => {
          try {
            return JSON.parse(l) as { level: number; err?: { message?: string } };
          } catch {
            return undefined;
          }
        })
        .find((l) => l && l.level === 60);
      resolve({ code, message: fatal?.err?.message ?? out, ms: Date.now() - started });
    });
  });
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

const ec = tokenKeyPair;

describe('start-up refuses a bad configuration', () => {
  it('a signing key that is not an EC P-256 key: the controller and the callback service exit 1, before waiting on the database', async () => {
    const rsa = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    });
    const database = `postgres://x:y@127.0.0.1:${await closedPort()}/none`;
    const common = { DATABASE_URL: database, KINFER_ARTIFACTS_URI: 'file:///tmp/kinfer-none', KINFER_API_PORT: '0', KINFER_CALLBACK_PORT: '0' };
    const results = [
      await runService(entry('controller/main.ts'), { ...common, KINFER_TOKEN_PRIVATE_KEY: 'not a key' }),
      await runService(entry('controller/main.ts'), { ...common, KINFER_TOKEN_PRIVATE_KEY: rsa.privateKey }),
      await runService(entry('callback/main.ts'), { ...common, KINFER_TOKEN_PUBLIC_KEY: rsa.publicKey }),
    ];
    expect(results.map((r) => [r.code, r.message])).toEqual([
      [1, expect.stringMatching(/^KINFER_TOKEN_PRIVATE_KEY is not a readable PEM private key: /)],
      [1, 'KINFER_TOKEN_PRIVATE_KEY must be an EC P-256 private key for ES256; it is rsa'],
      [1, 'KINFER_TOKEN_PUBLIC_KEY must be an EC P-256 public key for ES256; it is rsa'],
    ]);
    for (const r of results) expect(r.ms).toBeLessThan(10_000);
  });

  it('an unreachable database: a bounded wait, then exit 1 saying so', async () => {
    const port = await closedPort();
    const r = await runService(entry('callback/main.ts'), {
      DATABASE_URL: `postgres://x:y@127.0.0.1:${port}/none`,
      KINFER_TOKEN_PUBLIC_KEY: ec().publicKey,
      KINFER_CALLBACK_PORT: '0',
      KINFER_DATABASE_WAIT_SECONDS: '2',
    });
    expect(r.code).toBe(1);
    expect(r.message).toMatch(new RegExp(`^the database did not answer within 2 s: .*ECONNREFUSED 127.0.0.1:${port}`));
    expect(r.ms).toBeGreaterThanOrEqual(2_000);
    expect(r.ms).toBeLessThan(15_000);
  });
});

describe('the embedded Postgres', () => {
  it('uses random passwords kept 0600, listens on loopback only, and gives the services a role that is not a superuser', async () => {
    const dir = mkdtempSync(join(process.env.KINFER_TEST_DIR!, 'pg-'));
    const { chmodSync } = await import('node:fs');
    chmodSync(dir, 0o755);
    const port = await closedPort();
    const db = await startEmbeddedPostgres({ dataDir: join(dir, 'postgres'), port, persistent: true });
    try {
      const file = credentialsFile(join(dir, 'postgres'));
      expect(statSync(file).mode & 0o777).toBe(0o600);
      const saved = JSON.parse(readFileSync(file, 'utf8')) as { superuser: string; app: string };
      expect(saved.superuser).toMatch(/^[\w-]{32}$/);
      expect(saved.app).not.toBe(saved.superuser);
      expect(db.url).toBe(`postgres://kinfer_app:${saved.app}@127.0.0.1:${port}/kinfer`);

      const app = new pg.Client({ connectionString: db.url });
      await app.connect();
      try {
        const role = await app.query(`SELECT rolsuper FROM pg_roles WHERE rolname = current_user`);
        expect(role.rows[0]).toEqual({ rolsuper: false });
        await expect(app.query(`COPY (SELECT 1) TO PROGRAM 'true'`)).rejects.toThrow(/permission denied|must be superuser|pg_execute_server_program/);
        await app.query('CREATE TABLE owned_by_app (x int)');
      } finally {
        await app.end();
      }
      const admin = new pg.Client({ connectionString: db.adminUrl });
      await admin.connect();
      const settings = await admin.query(`SELECT current_setting('listen_addresses') AS listen, current_setting('unix_socket_directories') AS sockets`);
      await admin.end();
      expect(settings.rows[0]).toEqual({ listen: '127.0.0.1', sockets: '' });
      for (const password of ['kinfer', 'postgres', '']) {
        const guess = new pg.Client({ host: '127.0.0.1', port, user: 'kinfer', password, database: 'kinfer' });
        await expect(guess.connect()).rejects.toThrow(/password authentication failed|password/);
        await guess.end().catch(() => undefined);
      }
    } finally {
      await db.stop();
    }
    // Started again on the same data: the same credentials, the services' tables still theirs.
    const again = await startEmbeddedPostgres({ dataDir: join(dir, 'postgres'), port, persistent: true });
    try {
      expect(again.url).toBe(db.url);
      const app = new pg.Client({ connectionString: again.url });
      await app.connect();
      await app.query('INSERT INTO owned_by_app VALUES (1)');
      await app.end();
    } finally {
      await again.stop();
    }
  }, 120_000);
});
