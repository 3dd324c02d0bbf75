// Postgres LISTEN on a dedicated connection, reconnecting after errors: how one service hears of
// what another did (job state changes, model reloads) without polling.
import pg from 'pg';
import type { Logger } from '../http/logger.ts';

/** When the channel starts and stops being heard: what is missed in between is never told. */
export interface ListenHooks {
  onListening?(): void;
  onLost?(): void;
}

export function listenChannel(
  url: string,
  channel: string,
  onPayload: (payload: unknown) => void,
  log: Logger,
  hooks: ListenHooks = {},
): { stop(): Promise<void> } {
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
      if (client === c) {
        client = undefined;
        hooks.onLost?.();
      }
      setTimeout(() => void connect(), 1000).unref();
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${channel}`);
      client = c;
      hooks.onListening?.();
    } catch (err) {
      log.warn({ err: (err as Error).message, channel }, 'listener cannot connect; retrying');
      setTimeout(() => void connect(), 1000).unref();
    }
  };
  void connect();
  return {
    async stop() {
      stopped = true;
      if (client) hooks.onLost?.();
      await client?.end().catch(() => undefined);
    },
  };
}
