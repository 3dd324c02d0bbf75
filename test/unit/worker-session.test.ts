// The session worker hands each batch's input buffer back, and the next batch is written into it:
// no fresh megabytes per batch, and the answers are those of fresh arrays.
import { WorkerSession } from '../../src/runner/inference/inference-session.ts';
import { buildColorClassifier } from '../../src/samples/color-classifier.ts';

const PLANE = 3 * 32 * 32;

function batch(values: number[], into: Float32Array): Float32Array {
  values.forEach((v, i) => into.fill(v, i * PLANE, (i + 1) * PLANE));
  return into;
}

describe('WorkerSession input buffers', () => {
  it('reuses the buffer a run handed back, and answers as with a fresh array', async () => {
    const { session } = await WorkerSession.open(buildColorClassifier().model, { executionProviders: ['cpu'], intraOpNumThreads: 1 });
    try {
      const first = session.inputArray('float32', 2 * PLANE);
      const firstBuffer = first.buffer;
      await session.run(batch([0.9, 0.1], first), [2, 3, 32, 32]);
      expect(first.byteLength).toBe(0); // transferred to the worker

      // The same size: the buffer that went to the worker, back, with the first batch still in it.
      const second = session.inputArray('float32', 2 * PLANE);
      expect(second.buffer).not.toBe(firstBuffer); // another handle: the original was detached
      expect([second[0], second[PLANE]]).toEqual([Math.fround(0.9), Math.fround(0.1)]);
      const reused = await session.run(batch([0.2, 0.7], second), [2, 3, 32, 32]);
      const fresh = await session.run(batch([0.2, 0.7], new Float32Array(2 * PLANE)), [2, 3, 32, 32]);
      expect(Array.from(new Float32Array(reused.outputs[0]!.data))).toEqual(Array.from(new Float32Array(fresh.outputs[0]!.data)));

      // Another size: a new, zeroed buffer.
      const other = session.inputArray('float32', PLANE);
      expect(other.length).toBe(PLANE);
      expect(other.every((v) => v === 0)).toBe(true);
    } finally {
      await session.close();
    }
  });
});
