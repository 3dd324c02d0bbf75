// The reporter's batching: by count, and by size when results are large (masks).
import { PassThrough } from 'node:stream';
import type { ImageResult } from '../../src/contract/index.ts';
import type { CallbackClient } from '../../src/runner/io/callback-client.ts';
import { JobReporter, MAX_BATCH_BYTES } from '../../src/runner/pipeline/reporter.ts';

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

async function report(count: number, padding: number, batchSize: number): Promise<number[]> {
  const { batches, client } = recordingCallbacks();
  const stream = new PassThrough();
  stream.resume();
  const reporter = new JobReporter({
    callbacks: client,
    imagesFile: { stream, done: new Promise((r) => stream.on('end', r)) },
    total: count,
    resultsBatchSize: batchSize,
    progressEveryImages: 10_000,
    progressIntervalMs: 3_600_000,
  });
  for (let i = 0; i < count; i++) await reporter.add(result(i, padding));
  await reporter.finish();
  return batches;
}

describe('result batches', () => {
  it('are cut by count for small results', async () => {
    expect(await report(25, 10, 10)).toEqual([10, 10, 5]);
  });

  it("are cut by size before a request could pass the callback service's limit", async () => {
    const batches = await report(10, MAX_BATCH_BYTES / 3, 100);
    expect(batches).toEqual([3, 3, 3, 1]);
  });
});
