// Connection to Postgres through TypeORM. The schema comes from migrations, never `synchronize`.
import { DataSource } from 'typeorm';
import { ENTITIES } from './entities.ts';
import { InitialSchema1764000000000 } from './migrations/1764000000000-initial-schema.ts';
import { ObjectResults1764100000000 } from './migrations/1764100000000-object-results.ts';
import { ErrorCodes1764200000000 } from './migrations/1764200000000-error-codes.ts';
import { XaiResults1764300000000 } from './migrations/1764300000000-xai-results.ts';
import { LabelText1764400000000 } from './migrations/1764400000000-label-text.ts';
import { Access1764500000000 } from './migrations/1764500000000-access.ts';
import { ModelRegistry1764600000000 } from './migrations/1764600000000-model-registry.ts';
import { ModelServing1764700000000 } from './migrations/1764700000000-model-serving.ts';
import { Shards1764800000000 } from './migrations/1764800000000-shards.ts';

export const MIGRATIONS = [
  InitialSchema1764000000000,
  ObjectResults1764100000000,
  ErrorCodes1764200000000,
  XaiResults1764300000000,
  LabelText1764400000000,
  Access1764500000000,
  ModelRegistry1764600000000,
  ModelServing1764700000000,
  Shards1764800000000,
];

export function createDataSource(url: string, opts: { poolSize?: number } = {}): DataSource {
  return new DataSource({
    type: 'postgres',
    url,
    entities: ENTITIES,
    migrations: MIGRATIONS,
    migrationsTableName: 'kinfer_migrations',
    synchronize: false,
    logging: false,
    poolSize: opts.poolSize ?? 10,
    // A database that does not answer fails a request in seconds (a 503 to retry), not never.
    extra: { connectionTimeoutMillis: 5_000 },
  });
}

export class DatabaseUnreachableError extends Error {
  constructor(waitedMs: number, cause: unknown) {
    super(`the database did not answer within ${Math.round(waitedMs / 1000)} s: ${(cause as Error)?.message ?? cause}`, { cause });
    this.name = 'DatabaseUnreachableError';
  }
}

/**
 * Connects and applies pending migrations (under TypeORM's own lock, so concurrent starts are
 * safe). A database that is still starting is waited for, up to `waitMs`; then a clear error.
 */
export async function openDatabase(url: string, opts: { migrate: boolean; poolSize?: number; waitMs?: number }): Promise<DataSource> {
  const deadline = Date.now() + (opts.waitMs ?? 0);
  for (let delay = 250; ; delay = Math.min(delay * 2, 5_000)) {
    const ds = createDataSource(url, opts);
    try {
      await ds.initialize();
    } catch (err) {
      if (Date.now() + delay > deadline) throw new DatabaseUnreachableError(opts.waitMs ?? 0, err);
      await new Promise((resolve) => setTimeout(resolve, delay));
      continue;
    }
    if (opts.migrate) await ds.runMigrations({ transaction: 'all' });
    return ds;
  }
}
