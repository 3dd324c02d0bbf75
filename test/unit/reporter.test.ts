// The reporter's batching (by count, and by size when results are large: masks), and the parts it
// commits: what a resumed runner reads back.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import fc from 'fast-check';
import type { ImageResult } from '../../src/contract/index.ts';
import type { CallbackClient } from '../../src/runner/io/callback-client.ts';
import { ObjectStore } from '../../src/runner/io/object-store.ts';
import { committedIn, readParts, shardRange } from '../../src/runner/pipeline/parts.ts';
import { JobReporter, MAX_BATCH_BYTES } from '../../src/runner/pipeline/reporter.ts';

const store = new ObjectStore({ region: 'us-east-1' });

/** A FAKE callback client that records what would be sent (the real one is tested against the real service). */
function recordingCallbacks() {
  const batches: number[] = [];
  const client = { progress: async () => ({ status: 'running', applied: true }), imageResults: async (b: ImageResult[]) => void batches.push(b.length) };
  return { batches, client: client as unknown as CallbackClient };
}

const result = (i: number, padding: number): ImageResult => ({
  image_index: i,
  image_path: `img_${i}.png`,
  predicted_class_id: null,
  predicted_label: 'x'.repeat(padding),
  confidence: null,
  predictions: null,
  timings: null,
  error: null,
});

async function report(count: number, padding: number, batchSize: number, first = 0) {
  const { batches, client } = recordingCallbacks();
  const artifactsUri = pathToFileURL(mkdtempSync(join(tmpdir(), 'kinfer-parts-'))).href;
  const reporter = new JobReporter({
    callbacks: client,
    store,
    artifactsUri,
    total: first + count,
    resultsBatchSize: batchSize,
    progressEveryImages: 10_000,
    progressIntervalMs: 3_600_000,
  });
  for (let i = first; i < first + count; i++) await reporter.add(result(i, padding), i % 2 === 0 ? [i] : null);
  await reporter.finish();
  return { batches, artifactsUri };
}

describe('result batches', () => {
  it('are cut by count for small results', async () => {
    expect((await report(25, 10, 10)).batches).toEqual([10, 10, 5]);
  });

  it("are cut by size before a request could pass the callback service's limit", async () => {
    const { batches } = await report(10, MAX_BATCH_BYTES / 3, 100);
    expect(batches).toEqual([3, 3, 3, 1]);
  });

  it('are each committed as a part first, with the evaluation records, which a resumed runner reads back', async () => {
    const { artifactsUri } = await report(25, 10, 10, 100);
    const parts = [];
    for await (const { lines } of readParts(store, artifactsUri)) parts.push(lines.map((l) => [l.result.image_index, l.record]));
    expect(parts.map((p) => p.length)).toEqual([10, 10, 5]);
    expect(parts.flat()).toEqual(Array.from({ length: 25 }, (_, k) => [100 + k, (100 + k) % 2 === 0 ? [100 + k] : null]));
    // A shard over [110, 125) resumes after its own parts; [100, 110) holds only the first.
    expect(await committedIn(store, artifactsUri, 110, 125)).toMatchObject({ processed: 15, failed: 0, next: 125 });
    const first = await committedIn(store, artifactsUri, 100, 110);
    expect([first.processed, first.next, first.lastPart?.map((r) => r.image_index)]).toEqual([10, 110, Array.from({ length: 10 }, (_, k) => 100 + k)]);
    expect(await committedIn(store, artifactsUri, 125, 200)).toEqual({ processed: 0, failed: 0, next: 125, lastPart: null });
  });
});

describe('shard ranges', () => {
  it('cover every image once, contiguous, in shard order, sizes within one of each other', () => {
    fc.assert(
      fc.property(fc.nat(100_000), fc.integer({ min: 1, max: 64 }), (total, count) => {
        const ranges = Array.from({ length: count }, (_, i) => shardRange(total, i, count));
        expect(ranges[0]!.from).toBe(0);
        expect(ranges[count - 1]!.to).toBe(total);
        for (let i = 1; i < count; i++) expect(ranges[i]!.from).toBe(ranges[i - 1]!.to);
        const sizes = ranges.map((r) => r.to - r.from);
        expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
      }),
    );
  });
});

describe('progress', () => {
  /** A FAKE callback client whose calls stay pending until the test settles them, in the order they were made. */
  function heldCallbacks() {
    const calls: Array<{ kind: 'progress' | 'results'; body: unknown; settle: (err?: Error) => void }> = [];
    const held = (kind: 'progress' | 'results') => (body: unknown) =>
      new Promise<void>((resolve, reject) => calls.push({ kind, body, settle: (err) => (err ? reject(err) : resolve()) }));
    return { calls, client: { progress: held('progress'), imageResults: held('results') } as unknown as CallbackClient };
  }
  const reporterFor = (client: CallbackClient) =>
    new JobReporter({
      callbacks: client,
      store,
      artifactsUri: pathToFileURL(mkdtempSync(join(tmpdir(), 'kinfer-parts-'))).href,
      total: 10,
      resultsBatchSize: 100,
      progressEveryImages: 2,
      progressIntervalMs: 3_600_000,
    });
  /** Resolves with whether `p` settled within a few turns of the event loop (a part's write takes some). */
  const settlesSoon = (p: Promise<unknown>) => Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 200))]);
  const until = async (cond: () => boolean) => {
    for (let i = 0; i < 2000 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
    expect(cond()).toBe(true);
  };

  it('does not hold the pipeline while the callback service answers, and follows the results it counts', async () => {
    const { calls, client } = heldCallbacks();
    const reporter = reporterFor(client);
    await reporter.add(result(0, 1), null);
    // The second image makes progress due: its results and progress are sent, neither answered yet.
    expect(await settlesSoon(reporter.add(result(1, 1), null))).toBe(true);
    await until(() => calls.length === 1);
    expect(calls[0]!.kind).toBe('results');
    // The progress waits for the results it counts to be taken.
    await new Promise((r) => setTimeout(r, 50));
    expect(calls).toHaveLength(1);
    calls[0]!.settle();
    await until(() => calls.length === 2);
    expect(calls[1]).toMatchObject({ kind: 'progress', body: { processed_images: 2, total_images: 10, failed_images: 0 } });
    // The job is not finished before its progress is answered.
    const finished = reporter.finish();
    expect(await settlesSoon(finished)).toBe(false);
    calls[1]!.settle();
    await finished;
  });

  it("surfaces a refused progress at the next image, with the refusal's error", async () => {
    const { calls, client } = heldCallbacks();
    const reporter = reporterFor(client);
    await reporter.add(result(0, 1), null);
    await reporter.add(result(1, 1), null);
    await until(() => calls.length === 1);
    calls[0]!.settle();
    await until(() => calls.length === 2);
    calls[1]!.settle(new Error('job 42 is no longer active (cancelled)'));
    await new Promise((r) => setTimeout(r, 0));
    await expect(reporter.add(result(2, 1), null)).rejects.toThrow('no longer active (cancelled)');
  });
});
