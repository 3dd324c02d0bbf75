// Connection to Postgres through TypeORM. The schema comes from migrations, never `synchronize`.
import { DataSource } from 'typeorm';
import { ENTITIES } from './entities.ts';
import { InitialSchema1764000000000 } from './migrations/1764000000000-initial-schema.ts';
import { ObjectResults1764100000000 } from './migrations/1764100000000-object-results.ts';
import { ErrorCodes1764200000000 } from './migrations/1764200000000-error-codes.ts';
import { XaiResults1764300000000 } from './migrations/1764300000000-xai-results.ts';

export const MIGRATIONS = [InitialSchema1764000000000, ObjectResults1764100000000, ErrorCodes1764200000000, XaiResults1764300000000];

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
  });
}

/** Connects and applies pending migrations (under TypeORM's own lock, so concurrent starts are safe). */
export async function openDatabase(url: string, opts: { migrate: boolean; poolSize?: number }): Promise<DataSource> {
  const ds = createDataSource(url, opts);
  await ds.initialize();
  if (opts.migrate) await ds.runMigrations({ transaction: 'all' });
  return ds;
}
