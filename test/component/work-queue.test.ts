// The controller's work queue as client-go's: one worker per key at a time, keys merged while
// queued, a key added while it is processed runs once more, failures retried with growing
// delays, addAfter for a later look.
import { WorkQueue } from '../../src/kube/work-queue.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function recording(handler: (key: string, n: number) => Promise<void>, workers = 4) {
  const calls: Array<{ key: string; at: number }> = [];
  const errors: string[] = [];
  const started = Date.now();
  let n = 0;
  const queue = new WorkQueue(
    async (key) => {
      calls.push({ key, at: Date.now() - started });
      await handler(key, n++);
    },
    { workers, baseDelayMs: 50, maxDelayMs: 200, onError: (key, err) => errors.push(`${key}: ${(err as Error).message}`) },
  );
  return { queue, calls, errors };
}

describe('work queue', () => {
  it('merges a key added while it waits, and never runs one key twice at once', async () => {
    let running = 0;
    let overlap = false;
    const { queue, calls } = recording(async () => {
      running++;
      if (running > 1) overlap = true;
      await sleep(30);
      running--;
    }, 1);
    queue.add('a');
    queue.add('b');
    queue.add('b');
    queue.add('b');
    await sleep(150);
    expect(calls.map((c) => c.key)).toEqual(['a', 'b']);
    expect(overlap).toBe(false);
    queue.stop();
  });

  it('runs a key once more when it was added while being processed', async () => {
    const { queue, calls } = recording(async (_key, n) => {
      if (n === 0) {
        queue.add('a');
        queue.add('a');
      }
      await sleep(10);
    });
    queue.add('a');
    await sleep(100);
    expect(calls.map((c) => c.key)).toEqual(['a', 'a']);
    queue.stop();
  });

  it('retries a failing key with exponential backoff, capped', async () => {
    const { queue, calls, errors } = recording(async (_key, n) => {
      if (n < 5) throw new Error(`attempt ${n}`);
    });
    queue.add('k');
    // Waits for the sixth call rather than a fixed time: a loaded machine runs timers late.
    for (const deadline = Date.now() + 10_000; calls.length < 6 && Date.now() < deadline;) await sleep(20);
    expect(calls).toHaveLength(6);
    const gaps = calls.slice(1).map((c, i) => c.at - calls[i]!.at);
    // 50, 100, 200, then capped at 200 (each at least the delay, with timer slack). Uncapped, the
    // last would be 800: under it by 600 ms, whatever a late timer adds.
    expect(gaps[0]).toBeGreaterThanOrEqual(45);
    expect(gaps[1]).toBeGreaterThanOrEqual(95);
    expect(gaps[2]).toBeGreaterThanOrEqual(195);
    expect(gaps[3]).toBeGreaterThanOrEqual(195);
    expect(gaps[4]).toBeGreaterThanOrEqual(195);
    expect(gaps[4]).toBeLessThan(800);
    expect(errors).toEqual(['k: attempt 0', 'k: attempt 1', 'k: attempt 2', 'k: attempt 3', 'k: attempt 4']);
    queue.stop();
  });

  it('looks again after addAfter, and not at all once stopped', async () => {
    const { queue, calls } = recording(async () => undefined);
    queue.addAfter('later', 80);
    await sleep(30);
    expect(calls).toEqual([]);
    await sleep(100);
    expect(calls.map((c) => c.key)).toEqual(['later']);
    queue.addAfter('never', 20);
    queue.stop();
    queue.add('never');
    await sleep(60);
    expect(calls.map((c) => c.key)).toEqual(['later']);
  });
});
