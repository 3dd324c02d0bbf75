// How many images the pipeline reads ahead of decoding: READ_CONCURRENCY for small images, fewer
// for large ones (a byte budget at the largest image seen), never fewer than decoding takes at once.
import { ReadAhead } from '../../src/runner/pipeline/read-ahead.ts';

const MiB = 2 ** 20;

/** Starts `n` reads; returns how many may go on at once, and a list that fills as the others may. */
function startReads(ahead: ReadAhead, n: number) {
  const started: number[] = [];
  for (let i = 0; i < n; i++) void ahead.start().then(() => started.push(i));
  return started;
}
const turn = () => new Promise((r) => setImmediate(r));

describe('ReadAhead', () => {
  it('reads as many ahead as decoding takes until an image has been read, then up to READ_CONCURRENCY for small images', async () => {
    const ahead = new ReadAhead(4, 32, 256 * MiB);
    const started = startReads(ahead, 40);
    await turn();
    expect(started).toEqual([0, 1, 2, 3]);
    ahead.read(200_000);
    await turn();
    expect(ahead.allowed).toBe(32);
    expect(started).toEqual(Array.from({ length: 32 }, (_, i) => i));
    // Each image taken for decoding frees a place, in the order reads asked.
    ahead.taken();
    ahead.taken();
    await turn();
    expect(started).toEqual(Array.from({ length: 34 }, (_, i) => i));
  });

  it('holds fewer large images, down to what decoding takes at once', async () => {
    const ahead = new ReadAhead(4, 32, 256 * MiB);
    const started = startReads(ahead, 40);
    ahead.read(30 * MiB); // 256 / 30: 8 at most
    await turn();
    expect(ahead.allowed).toBe(8);
    expect(started).toHaveLength(8);
    ahead.read(100 * MiB); // 2, but decoding takes 4
    expect(ahead.allowed).toBe(4);
    // Eight are out: none more starts until four of them are taken.
    for (let i = 0; i < 4; i++) ahead.taken();
    await turn();
    expect(started).toHaveLength(8);
    ahead.taken();
    await turn();
    expect(started).toHaveLength(9);
  });
});
