// A job's server-sent events when the controller's LISTEN connection is cut without an error (a
// silent partition) while the job ends: the notification is never heard, and the stream used to
// wait for a `done` that would not come. The hub notices the cut by its heartbeat, listens again
// once the network is back, and every open stream reads its job again: it gets its `done`. The
// Kubernetes controller's listener the same way: once it listens again, every job is reconciled,
// not only at the next resync (30 s). A stream whose first read is held while the job ends, the
// hub starts listening, or a read fails: one status, then done, nothing written after the end, no
// stalled stream. `kinfer watch` (the CLI as a process) through a relay that is cut: it connects
// again and ends with the job, or gives up after KINFER_WATCH_RECONNECT_MS.
import { resolve } from 'node:path';
import express from 'express';
import { streamJobEvents } from '../../src/controller/api/events.ts';
import { JobEventHub, listenForReconciles } from '../../src/db/job-events.ts';
import type { JobStore } from '../../src/db/job-store.ts';
import { newTestRun, quietLog, serve, testDatabase, type TestDatabase } from '../support/in-process.ts';
import { eventually } from '../support/local-cluster.ts';
import { runCommand } from '../support/processes.ts';
import { tcpProxy } from '../support/tcp-proxy.ts';
import { wrapMethod } from '../support/wrap-method.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await testDatabase();
});
afterAll(async () => {
  await db?.stop();
});

/** A server-sent event stream as a client reads it: each event's name and its job's status. */
function readEvents(url: string) {
  const events: Array<{ event: string; status: string }> = [];
  let ended = false;
  const reading = (async () => {
    const res = await fetch(url);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      for (let at = buffer.indexOf('\n\n'); at >= 0; at = buffer.indexOf('\n\n')) {
        const block = buffer.slice(0, at);
        buffer = buffer.slice(at + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event && data) events.push({ event, status: JSON.parse(data).status });
      }
    }
    ended = true;
  })();
  return { events, ended: () => ended, reading };
}

/** The stream of a job cancelled while pending: its status, then done, and then it ends. */
async function endsPendingThenCancelled(stream: ReturnType<typeof readEvents>): Promise<void> {
  await eventually('the stream ends', async () => (stream.ended() ? true : undefined), 10_000);
  expect(stream.events).toEqual([
    { event: 'status', status: 'pending' },
    { event: 'done', status: 'cancelled' },
  ]);
}

/** The hub hears changes (a new job each try: a change it missed is not made again). */
async function hubListening(hub: JobEventHub): Promise<void> {
  await eventually('the hub listening', async () => {
    const probe = await newTestRun(db.store);
    const heard: string[] = [];
    const unsubscribe = hub.subscribe(probe, { onEvent: (e) => heard.push(e.status) });
    await db.store.cancel('test_run', probe);
    await new Promise((r) => setTimeout(r, 200));
    unsubscribe();
    return heard.includes('cancelled') ? true : undefined;
  });
}

describe('job events across a lost LISTEN connection', () => {
  it('a stream open while the job ends unheard gets its done once the hub listens again', async () => {
    const proxy = await tcpProxy(Number(new URL(db.url).port));
    const relayed = new URL(db.url);
    relayed.port = String(proxy.port);
    const hub = new JobEventHub(relayed.toString(), quietLog(), { heartbeatMs: 300 });
    const app = express();
    app.get('/events/:id', async (req, res) => {
      const job = (await db.store.get('test_run', req.params.id))!;
      await streamJobEvents(req, res, { kind: 'test_run', job, store: db.store, hub, present: (j) => ({ id: j.id, status: j.status }) });
    });
    const api = await serve(app);
    const id = await newTestRun(db.store);
    try {
      await hubListening(hub); // before the cut
      const stream = readEvents(`${api.url}/events/${id}`);
      const events = stream.events;
      await eventually('the first status', async () => (events.length > 0 ? true : undefined), 10_000);
      expect(events).toEqual([{ event: 'status', status: 'pending' }]);

      proxy.freeze();
      await new Promise((r) => setTimeout(r, 1_500)); // the hub gives the connection up (heartbeat 0.3 s)
      await db.store.cancel('test_run', id); // NOTIFYs; nobody hears it
      await new Promise((r) => setTimeout(r, 1_000));
      expect([events.length, stream.ended()]).toEqual([1, false]);

      proxy.thaw();
      await eventually('the stream ends with done', async () => (stream.ended() ? true : undefined), 15_000);
      await stream.reading;
      expect(events).toEqual([
        { event: 'status', status: 'pending' },
        { event: 'done', status: 'cancelled' },
      ]);
    } finally {
      await hub.stop();
      await api.close();
      await proxy.close();
    }
  });
});

describe("a stream's first read", () => {
  /**
   * An API whose stream reads its job through a store that holds the stream's first read (done,
   * its answer kept) until `release`: what happens meanwhile happens while it is under way.
   * `laterReadsFail`: every read after the first fails, as with the database gone.
   */
  async function heldFirstRead(hub: JobEventHub, laterReadsFail = false) {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let held = false;
    let reads = 0;
    const store = wrapMethod(
      db.store,
      'get',
      (get) =>
        (async (...args: Parameters<JobStore['get']>) => {
          if (laterReadsFail && reads > 0) throw new Error('connection terminated unexpectedly');
          const job = await get(...args);
          if (reads++ === 0) {
            held = true;
            await released;
          }
          return job;
        }) as JobStore['get'],
    );
    const app = express();
    app.get('/events/:id', async (req, res) => {
      const job = (await db.store.get('test_run', req.params.id))!;
      await streamJobEvents(req, res, { kind: 'test_run', job, store, hub, present: (j) => ({ id: j.id, status: j.status }) });
    });
    const api = await serve(app);
    return { api, release, held: () => held };
  }

  it('a job that ends meanwhile: its status first, then done, and nothing written after the end', async () => {
    const hub = new JobEventHub(db.url, quietLog());
    const { api, release, held } = await heldFirstRead(hub);
    const id = await newTestRun(db.store);
    try {
      await hubListening(hub);
      const stream = readEvents(`${api.url}/events/${id}`);
      await eventually('the first read under way', async () => (held() ? true : undefined), 10_000);
      await db.store.cancel('test_run', id); // heard now, while the first read is held
      await new Promise((r) => setTimeout(r, 500));
      // Before: the event was handled at once, `done` written and the stream ended; the first
      // read's `status`, written after that, was an uncaught ERR_STREAM_WRITE_AFTER_END.
      expect(stream.events).toEqual([]);
      release();
      await endsPendingThenCancelled(stream);
    } finally {
      release();
      await hub.stop();
      await api.close();
    }
  });

  it('a read that fails ends the stream, for its client to connect again, instead of stalling it', async () => {
    const hub = new JobEventHub(db.url, quietLog());
    const { api, release } = await heldFirstRead(hub, true);
    const id = await newTestRun(db.store);
    try {
      await hubListening(hub);
      release();
      const stream = readEvents(`${api.url}/events/${id}`);
      await eventually('the first status', async () => (stream.events.length > 0 ? true : undefined), 10_000);
      await db.store.cancel('test_run', id); // its done needs a read, which fails
      await eventually('the stream ends', async () => (stream.ended() ? true : undefined), 10_000);
      expect(stream.events).toEqual([{ event: 'status', status: 'pending' }]);
    } finally {
      await hub.stop();
      await api.close();
    }
  });

  it('the hub starting to listen meanwhile: one status, not two', async () => {
    // The hub cannot reach Postgres until the stream has subscribed and its first read is under way.
    const proxy = await tcpProxy(Number(new URL(db.url).port));
    const relayed = new URL(db.url);
    relayed.port = String(proxy.port);
    proxy.freeze();
    const hub = new JobEventHub(relayed.toString(), quietLog(), { heartbeatMs: 300 });
    const { api, release, held } = await heldFirstRead(hub);
    const id = await newTestRun(db.store);
    try {
      const stream = readEvents(`${api.url}/events/${id}`);
      await eventually('the first read under way', async () => (held() ? true : undefined), 10_000);
      proxy.thaw();
      await hubListening(hub); // it has told its subscribers to read their jobs again
      release();
      await eventually('the first status', async () => (stream.events.length > 0 ? true : undefined), 10_000);
      await db.store.cancel('test_run', id);
      await endsPendingThenCancelled(stream);
    } finally {
      release();
      await hub.stop();
      await api.close();
      await proxy.close();
    }
  });
});

describe('kinfer watch across a broken stream', () => {
  /** The two routes `kinfer watch` reads (the job, its events), behind a relay that can be cut. */
  async function watchedApi(hub: JobEventHub) {
    let streams = 0;
    const app = express();
    app.get('/api/v1/test-runs/:id', async (req, res) => {
      res.json(await db.store.get('test_run', req.params.id));
    });
    app.get('/api/v1/test-runs/:id/events', async (req, res) => {
      const job = (await db.store.get('test_run', req.params.id))!;
      await streamJobEvents(req, res, { kind: 'test_run', job, store: db.store, hub, present: (j) => ({ ...j }) });
      streams++; // its first status written
    });
    const api = await serve(app);
    const proxy = await tcpProxy(Number(new URL(api.url).port));
    return { url: `http://127.0.0.1:${proxy.port}/api/v1`, proxy, api, streams: () => streams };
  }
  /** Until watch has a stream and its first status (relayed within this margin), so that the cut breaks a stream, not its opening. */
  const following = async (streams: () => number) => {
    await eventually('watch following the job', async () => (streams() === 1 ? true : undefined), 20_000);
    await new Promise((r) => setTimeout(r, 300));
  };
  const watch = (url: string, id: string, env: Record<string, string> = {}) =>
    runCommand(resolve('bin/kinfer'), ['watch', id], { env: { ...process.env, NODE_OPTIONS: '', KINFER_API_URL: url, KINFER_TOKEN: 'unused', ...env } });

  it('connects again and ends with the job, whose end it did not hear', async () => {
    const hub = new JobEventHub(db.url, quietLog());
    const { url, proxy, api, streams } = await watchedApi(hub);
    const id = await newTestRun(db.store);
    try {
      await hubListening(hub);
      const watching = watch(url, id);
      await following(streams);
      await proxy.cut(); // its stream breaks, and connecting again is refused for a while
      await db.store.cancel('test_run', id);
      await new Promise((r) => setTimeout(r, 1_500));
      await proxy.restore();
      const result = await watching;
      expect(streams()).toBeGreaterThanOrEqual(2);
      // Cancelled: exit code 1, as for any job that did not complete, with the job as it ended.
      expect([result.code, result.stdout]).toEqual([1, expect.stringContaining(`${id}  cancelled`)]);
      expect(result.stderr).toMatch(/the event stream broke .*; connecting again in 0\.5 s/);
    } finally {
      await hub.stop();
      await proxy.close();
      await api.close();
    }
  }, 60_000);

  it("a proxy's error page, not JSON, is said as it is", async () => {
    const app = express();
    app.get('/api/v1/test-runs/:id', (_req, res) => {
      res.status(502).type('html').send('<html><body>502 Bad Gateway</body></html>\n');
    });
    const api = await serve(app);
    try {
      const result = await runCommand(resolve('bin/kinfer'), ['test-run', 'get', 'some-id'], {
        env: { ...process.env, NODE_OPTIONS: '', KINFER_API_URL: `${api.url}/api/v1`, KINFER_TOKEN: 'unused' },
      });
      expect([result.code, result.stderr]).toEqual([1, expect.stringContaining('HTTP 502: <html><body>502 Bad Gateway</body></html>')]);
    } finally {
      await api.close();
    }
  });

  it('gives up, saying so, when no stream comes back for KINFER_WATCH_RECONNECT_MS', async () => {
    const hub = new JobEventHub(db.url, quietLog());
    const { url, proxy, api, streams } = await watchedApi(hub);
    const id = await newTestRun(db.store);
    try {
      const watching = watch(url, id, { KINFER_WATCH_RECONNECT_MS: '1500' });
      await following(streams);
      await proxy.cut();
      const result = await watching;
      expect([result.code, result.stderr]).toEqual([1, expect.stringContaining(`no stream for 2 s; run kinfer watch ${id} again`)]);
    } finally {
      await hub.stop();
      await proxy.close();
      await api.close();
    }
  }, 60_000);
});

describe("a controller's job events across a lost LISTEN connection", () => {
  it('each event enqueues its job; listening again enqueues every job, since a change made meanwhile was never heard', async () => {
    const proxy = await tcpProxy(Number(new URL(db.url).port));
    const relayed = new URL(db.url);
    relayed.port = String(proxy.port);
    // What KubeController offers the listener, recorded.
    const enqueued: string[] = [];
    let everyJob = 0;
    const listener = listenForReconciles(relayed.toString(), { enqueueJob: (id) => enqueued.push(id), enqueueAll: () => everyJob++ }, quietLog(), {
      heartbeatMs: 300,
    });
    try {
      // Listening: every job once, then each change as it is made.
      await eventually('the listener heard a change', async () => {
        const probe = await newTestRun(db.store);
        await db.store.cancel('test_run', probe);
        await new Promise((r) => setTimeout(r, 200));
        return enqueued.includes(probe) ? true : undefined;
      });
      expect(everyJob).toBe(1);

      proxy.freeze();
      await new Promise((r) => setTimeout(r, 1_500)); // the listener gives the connection up (heartbeat 0.3 s)
      const unheard = await newTestRun(db.store);
      await db.store.cancel('test_run', unheard);
      await new Promise((r) => setTimeout(r, 500));
      expect([enqueued.includes(unheard), everyJob]).toEqual([false, 1]);

      proxy.thaw();
      await eventually('every job enqueued again', async () => (everyJob === 2 ? true : undefined), 15_000);
      // Heard again from then on.
      const after = await newTestRun(db.store);
      await db.store.cancel('test_run', after);
      await eventually('a change after the cut heard', async () => (enqueued.includes(after) ? true : undefined), 10_000);
    } finally {
      await listener.stop();
      await proxy.close();
    }
  });
});
