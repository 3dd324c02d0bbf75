// Postgres LISTEN on a dedicated connection, reconnecting after errors: how one service hears of
// what another did (job state changes, model reloads) without polling.
import pg from 'pg';
import type { Logger } from '../http/logger.ts';

export function listenChannel(url: string, channel: string, onPayload: (payload: unknown) => void, log: Logger): { stop(): Promise<void> } {
  let client: pg.Client | undefined;
  let stopped = false;
  const connect = async () => {
    if (stopped) return;
    const c = new pg.Client({ connectionString: url });
    c.on('notification', (msg) => {
      try {
        onPayload(JSON.parse(msg.payload ?? 'null'));
      } catch {
        log.warn({ channel }, 'ignored a notification that is not JSON');
      }
    });
    c.on('error', (err) => {
      log.warn({ err: err.message, channel }, 'listener lost its connection; reconnecting');
      void c.end().catch(() => undefined);
      if (client === c) client = undefined;
      setTimeout(() => void connect(), 1000).unref();
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${channel}`);
      client = c;
    } catch (err) {
      log.warn({ err: (err as Error).message, channel }, 'listener cannot connect; retrying');
      setTimeout(() => void connect(), 1000).unref();
    }
  };
  void connect();
  return {
    async stop() {
      stopped = true;
      await client?.end().catch(() => undefined);
    },
  };
}
