import fc from 'fast-check';
import { parseRunnerEnv } from '../../src/contract/index.ts';
import {
  AUTO_SPLIT_MAX_MODEL_BYTES,
  AUTO_SPLIT_MIN_MODEL_BYTES,
  partSizes,
  sessionThreads,
  type SplitInputs,
} from '../../src/runner/inference/session-split.ts';

const MiB = 2 ** 20;
const base: SplitInputs = { setting: 'auto', threads: 2, cpuOnly: true, explains: false, modelBytes: 12 * MiB };

describe('which sessions a batch is split over', () => {
  it('auto: two of half the threads for a small model on the CPU, with an even number of threads', () => {
    expect(sessionThreads(base)).toEqual([1, 1]);
    expect(sessionThreads({ ...base, threads: 8 })).toEqual([4, 4]);
    expect(sessionThreads({ ...base, modelBytes: AUTO_SPLIT_MAX_MODEL_BYTES })).toEqual([1, 1]);
    expect(sessionThreads({ ...base, modelBytes: AUTO_SPLIT_MIN_MODEL_BYTES })).toEqual([1, 1]);
  });

  it('auto: one session of all the threads for a larger or a tiny model, an odd number of threads, or one thread', () => {
    expect(sessionThreads({ ...base, modelBytes: AUTO_SPLIT_MAX_MODEL_BYTES + 1 })).toEqual([2]);
    expect(sessionThreads({ ...base, modelBytes: AUTO_SPLIT_MIN_MODEL_BYTES - 1 })).toEqual([2]);
    expect(sessionThreads({ ...base, threads: 3 })).toEqual([3]);
    expect(sessionThreads({ ...base, threads: 1 })).toEqual([1]);
  });

  it('one session for a GPU provider and for explanations', () => {
    for (const setting of ['auto', 2] as const) {
      expect(sessionThreads({ ...base, setting, cpuOnly: false })).toEqual([2]);
      expect(sessionThreads({ ...base, setting, explains: true })).toEqual([2]);
    }
  });

  it('a number: that many sessions, at most one a thread, the threads shared out', () => {
    expect(sessionThreads({ ...base, setting: 1 })).toEqual([2]);
    expect(sessionThreads({ ...base, setting: 3, threads: 3, modelBytes: 500 * MiB })).toEqual([1, 1, 1]);
    expect(sessionThreads({ ...base, setting: 2, threads: 5 })).toEqual([3, 2]);
    expect(sessionThreads({ ...base, setting: 8, threads: 3 })).toEqual([1, 1, 1]);
    expect(sessionThreads({ ...base, setting: 4, threads: 8 })).toEqual([2, 2, 2, 2]);
  });

  it('uses every thread, none idle, each session at least one (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 64 }), (setting, threads) => {
        const t = sessionThreads({ ...base, setting, threads });
        expect(t.reduce((a, b) => a + b, 0)).toBe(threads);
        expect(Math.min(...t)).toBeGreaterThanOrEqual(1);
        expect(Math.max(...t) - Math.min(...t)).toBeLessThanOrEqual(1);
        expect(t.length).toBe(Math.min(setting, threads));
      }),
    );
  });

  it('cuts a batch into contiguous parts that differ by one image at most, none empty', () => {
    expect(partSizes(4, 2)).toEqual([2, 2]);
    expect(partSizes(5, 3)).toEqual([2, 2, 1]);
    expect(partSizes(1, 2)).toEqual([1]);
    expect(partSizes(7, 1)).toEqual([7]);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1024 }), fc.integer({ min: 1, max: 64 }), (rows, sessions) => {
        const parts = partSizes(rows, sessions);
        expect(parts.reduce((a, b) => a + b, 0)).toBe(rows);
        expect(parts.length).toBe(Math.min(rows, sessions));
        expect(Math.min(...parts)).toBeGreaterThanOrEqual(1);
        expect(Math.max(...parts) - Math.min(...parts)).toBeLessThanOrEqual(1);
      }),
    );
  });

  it('reads SESSIONS from the runner environment: auto by default, a number, nothing else', () => {
    const env = {
      JOB_ID: '3f6c1e1a-5d7b-4c2e-9a8f-0b1c2d3e4f50',
      TRACE_ID: 't',
      INFERENCE_TYPE: 'single',
      BACKEND_BASE_URL: 'http://127.0.0.1:9',
      CALLBACK_TOKEN: 'x',
      TASK_TYPE: 'object_detection',
      CHECKPOINT_PATH: 's3://models/m.onnx',
      INPUT_CONFIG: '{"image_path":"s3://images/a.jpg"}',
      ARTIFACTS_URI: 's3://artifacts/out',
    };
    expect(parseRunnerEnv(env).SESSIONS).toBe('auto');
    expect(parseRunnerEnv({ ...env, SESSIONS: '3' }).SESSIONS).toBe(3);
    for (const bad of ['0', '65', 'two', '1.5']) expect(() => parseRunnerEnv({ ...env, SESSIONS: bad })).toThrow(/SESSIONS/);
  });
});
