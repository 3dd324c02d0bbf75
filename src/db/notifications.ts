// Postgres LISTEN on a dedicated connection, reconnecting after errors: how one service hears of
// what another did (job state changes, model reloads, token revocations) without polling.
import pg from 'pg';
import type { Logger } from '../http/logger.ts';

/** When the channel starts and stops being heard: what is missed in between is never told. */
export interface ListenHooks {
  onListening?(): void;
  onLost?(): void;
  /**
   * How often the connection is checked, and how long a check or a connect may take (default
   * 5 s). A connection cut without a reset (a network partition, a peer gone silent) raises no
   * error: TCP's keepalive notices it hours later, and until then the channel seems heard while
   * nothing arrives (a revocation would not reach the predictor's token cache).
   */
  heartbeatMs?: number;
}

export function listenChannel(
  url: string,
  channel: string,
  onPayload: (payload: unknown) => void,
  log: Logger,
  hooks: ListenHooks = {},
): { stop(): Promise<void> } {
  return listenChannels(url, { [channel]: onPayload }, log, hooks);
}

/**
 * Several channels on one connection (each with its handler): a process that hears several
 * things holds one LISTEN connection of the database's `max_connections`, not one per channel.
 * The connection's `application_name` names them (`kinfer listen a,b`), for pg_stat_activity.
 */
export function listenChannels(
  url: string,
  handlers: Record<string, (payload: unknown) => void>,
  log: Logger,
  hooks: ListenHooks = {},
): { stop(): Promise<void> } {
  const channels = Object.keys(handlers);
  const label = channels.join(',');
  const heartbeatMs = hooks.heartbeatMs ?? 5_000;
  let client: pg.Client | undefined;
  let stopped = false;
  let heartbeat: NodeJS.Timeout | undefined;

  const connect = async () => {
    if (stopped) return;
    // Postgres keeps 63 bytes of it.
    const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: heartbeatMs, application_name: `kinfer listen ${label}`.slice(0, 63) });
    let gone = false;
    /** This connection is done for: said once, closed, and another one tried a second later. */
    const drop = (message: string, err?: unknown) => {
      if (gone) return;
      gone = true;
      void close(c, heartbeatMs);
      // Stopping ends the connection on purpose: nothing to say, nothing to retry.
      if (stopped) return;
      log.warn({ channel: label, ...(err ? { err: (err as Error).message } : {}) }, message);
      if (client === c) {
        // The heartbeat is the current connection's.
        clearTimeout(heartbeat);
        client = undefined;
        hooks.onLost?.();
      }
      setTimeout(() => void connect(), 1000).unref();
    };
    /** One check every heartbeatMs; an answer later than that drops the connection. */
    const beat = () => {
      heartbeat = setTimeout(() => {
        const late = setTimeout(() => drop('listener heard nothing back from the database; reconnecting'), heartbeatMs);
        c.query('SELECT 1').then(
          () => {
            clearTimeout(late);
            if (!gone) beat();
          },
          (err: unknown) => {
            clearTimeout(late);
            drop('listener lost its connection; reconnecting', err);
          },
        );
      }, heartbeatMs);
      heartbeat.unref();
    };
    c.on('notification', (msg) => {
      let payload: unknown;
      try {
        payload = JSON.parse(msg.payload ?? 'null');
      } catch {
        log.warn({ channel: msg.channel }, 'ignored a notification that is not JSON');
        return;
      }
      try {
        handlers[msg.channel]?.(payload);
      } catch (err) {
        // Thrown inside pg's socket handler, it would end the process.
        log.error({ channel: msg.channel, err }, 'a notification handler failed');
      }
    });
    c.on('error', (err) => drop('listener lost its connection; reconnecting', err));
    try {
      await c.connect();
      for (const ch of channels) await c.query(`LISTEN ${ch}`);
    } catch (err) {
      drop('listener cannot connect; retrying', err);
      return;
    }
    if (gone) return;
    if (stopped) {
      await close(c, heartbeatMs);
      return;
    }
    client = c;
    hooks.onListening?.();
    beat();
  };
  void connect();
  return {
    async stop() {
      stopped = true;
      clearTimeout(heartbeat);
      const c = client;
      client = undefined;
      if (!c) return;
      hooks.onLost?.();
      await close(c, heartbeatMs);
    },
  };
}

/**
 * Ends a connection politely when the server answers, and drops its socket when it does not
 * within `ms`: `end()` alone waits for the server, forever on a connection cut without a reset.
 */
async function close(c: pg.Client, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([c.end().catch(() => undefined), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms).unref()))]);
  clearTimeout(timer);
  // pg has no public way to drop a connection; its socket is `connection.stream`.
  (c as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
}
