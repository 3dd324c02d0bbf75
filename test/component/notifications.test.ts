// LISTEN on the real Postgres through a TCP relay: a connection cut without a reset (a silent
// partition: no error on either side) is noticed by the listener's heartbeat, which says the channel
// is lost and listens again once the network is back. Before, such a connection seemed heard for
// hours (until TCP's keepalive) while nothing arrived: the predictor kept API tokens a revocation
// could no longer reach.
import { listenChannel, listenChannels } from '../../src/db/notifications.ts';
import { quietLog, testDatabase, type TestDatabase } from '../support/in-process.ts';
import { eventually } from '../support/local-cluster.ts';
import { tcpProxy } from '../support/tcp-proxy.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await testDatabase();
});
afterAll(async () => {
  await db?.stop();
});

const CHANNEL = 'kinfer_test_notifications';

/** A listener through a fresh relay to the database, with its hook calls and payloads in order. */
async function relayedListener(heartbeatMs: number) {
  const proxy = await tcpProxy(Number(new URL(db.url).port));
  const relayed = new URL(db.url);
  relayed.port = String(proxy.port);
  const hooks: string[] = [];
  const heard: unknown[] = [];
  const listener = listenChannel(relayed.toString(), CHANNEL, (p) => heard.push(p), quietLog(), {
    onListening: () => hooks.push('listening'),
    onLost: () => hooks.push('lost'),
    heartbeatMs,
  });
  await eventually('listening', async () => (hooks.includes('listening') ? true : undefined), 10_000);
  return { proxy, listener, hooks, heard };
}

describe('listenChannel', () => {
  it('notices a silent partition by its heartbeat (onLost), listens again once it ends (onListening), and hears what is sent then', async () => {
    const { proxy, listener, hooks, heard } = await relayedListener(300);
    const send = (n: number) => db.ds.query('SELECT pg_notify($1, $2)', [CHANNEL, JSON.stringify({ n })]);
    const hears = (n: number) => eventually(`notification ${n}`, async () => (heard.some((p) => (p as { n: number }).n === n) ? true : undefined), 10_000);
    try {
      await send(1);
      await hears(1);

      proxy.freeze();
      const frozenAt = Date.now();
      await eventually('the partition noticed', async () => (hooks.includes('lost') ? true : undefined), 10_000);
      // Within a heartbeat and its wait (0.6 s), not TCP's hours.
      expect(Date.now() - frozenAt).toBeLessThan(3_000);
      // A notification sent meanwhile cannot arrive; trying to connect again does not succeed.
      await send(2);
      await new Promise((r) => setTimeout(r, 1_500));
      expect(hooks).toEqual(['listening', 'lost']);
      expect(heard).toEqual([{ n: 1 }]);

      proxy.thaw();
      await eventually('listening again', async () => (hooks.length === 3 ? true : undefined), 10_000);
      expect(hooks).toEqual(['listening', 'lost', 'listening']);
      await send(3);
      await hears(3);
    } finally {
      await listener.stop();
      await proxy.close();
    }
    expect(hooks.at(-1)).toBe('lost');
  });

  it('stops within a heartbeat even while the connection hangs (it used to wait for an answer that never comes)', async () => {
    const { proxy, listener, hooks } = await relayedListener(1_000);
    try {
      proxy.freeze();
      const started = Date.now();
      // end() waits for the server's answer, which never comes: stop() drops the socket after a heartbeat.
      await listener.stop();
      expect(Date.now() - started).toBeLessThan(2_500);
      expect(hooks).toEqual(['listening', 'lost']);
    } finally {
      await proxy.close();
    }
  });
});

describe('listenChannels', () => {
  it('hears several channels on one connection, each with its handler; a handler that throws loses its notification, not the listener', async () => {
    const other = 'kinfer_test_other';
    const heard: Array<[string, unknown]> = [];
    let listening = false;
    const listener = listenChannels(
      db.url,
      {
        [CHANNEL]: (p) => {
          if ((p as { boom?: boolean }).boom) throw new Error('boom');
          heard.push([CHANNEL, p]);
        },
        [other]: (p) => heard.push([other, p]),
      },
      quietLog(),
      { onListening: () => (listening = true) },
    );
    try {
      await eventually('listening', async () => (listening ? true : undefined), 10_000);
      const connections: Array<{ application_name: string }> = await db.ds.query(
        `SELECT application_name FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'kinfer listen%'`,
      );
      expect(connections.map((c) => c.application_name)).toEqual([`kinfer listen ${CHANNEL},${other}`]);
      const send = (channel: string, payload: unknown) => db.ds.query('SELECT pg_notify($1, $2)', [channel, JSON.stringify(payload)]);
      await send(CHANNEL, { n: 1 });
      await send(other, { n: 2 });
      await send(CHANNEL, { boom: true });
      await send(CHANNEL, { n: 3 });
      await eventually('the last notification', async () => (heard.length === 3 ? true : undefined), 10_000);
      expect(heard).toEqual([
        [CHANNEL, { n: 1 }],
        [other, { n: 2 }],
        [CHANNEL, { n: 3 }],
      ]);
    } finally {
      await listener.stop();
    }
  });
});
