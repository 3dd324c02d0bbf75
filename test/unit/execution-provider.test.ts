// A GPU job on a machine whose ONNX Runtime has no CUDA provider (this one: the npm package
// ships CPU binaries only) must still run, on CPU, and say so.
import { WorkerSession } from '../../src/runner/inference/inference-session.ts';
import { buildColorClassifier } from '../../src/samples/color-classifier.ts';

describe('execution providers', () => {
  it('falls back from CUDA to CPU with a warning when CUDA cannot load', async () => {
    const { session, info } = await WorkerSession.open(buildColorClassifier().model, { executionProviders: ['cuda', 'cpu'], intraOpNumThreads: 1 });
    try {
      expect(info.provider).toBe('cpu');
      expect(info.warning).toMatch(/^execution providers \[cuda, cpu\] unavailable \(.+\); fell back to cpu$/);
    } finally {
      await session.close();
    }
  });

  it('runs on CPU without a warning when CPU is what was asked for', async () => {
    const { session, info } = await WorkerSession.open(buildColorClassifier().model, { executionProviders: ['cpu'], intraOpNumThreads: 1 });
    try {
      expect(info).toMatchObject({ provider: 'cpu', warning: undefined });
    } finally {
      await session.close();
    }
  });
});
