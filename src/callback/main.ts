// Callback service entrypoint. Needs DATABASE_URL and the token public key; never the private key.
import { z } from 'zod';
import { openDatabase } from '../db/data-source.ts';
import { JobStore } from '../db/job-store.ts';
import { pemFromEnv } from '../http/keys.ts';
import { serviceLogger } from '../http/logger.ts';
import { guardProcess, listen, readyToServe, stopWithParent } from '../http/plumbing.ts';
import { createCallbackApp } from './app.ts';
import { TokenVerifier } from './token-verifier.ts';

const Config = z.object({
  DATABASE_URL: z.string().min(1),
  /** How long start-up waits for the database before it gives up with a clear message. */
  KINFER_DATABASE_WAIT_SECONDS: z.coerce.number().min(0).default(60),
  KINFER_CALLBACK_HOST: z.string().default('127.0.0.1'),
  KINFER_CALLBACK_PORT: z.coerce.number().int().min(0).max(65535).default(8081),
});

const log = serviceLogger('callback');
guardProcess(log);
stopWithParent(log);
try {
  const config = Config.parse(process.env);
  // Configuration first: a bad key is refused before anything waits on the database.
  const verifier = new TokenVerifier(pemFromEnv(process.env, 'KINFER_TOKEN_PUBLIC_KEY'));
  const ds = await openDatabase(config.DATABASE_URL, { migrate: false, poolSize: 10, waitMs: config.KINFER_DATABASE_WAIT_SECONDS * 1000 });
  const app = createCallbackApp({
    store: new JobStore(ds),
    verifier,
    log,
    ready: async () => {
      await ds.query('SELECT 1');
    },
  });
  const server = await listen(app, config.KINFER_CALLBACK_HOST, config.KINFER_CALLBACK_PORT);
  await readyToServe(
    server.port,
    async () => {
      await server.close();
      await ds.destroy();
    },
    log,
  );
  log.info({ host: config.KINFER_CALLBACK_HOST, port: server.port }, 'callback service listening');
} catch (err) {
  log.fatal({ err }, 'callback service failed to start');
  process.exit(1);
}
