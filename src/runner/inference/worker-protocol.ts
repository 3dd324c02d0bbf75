// Messages between the runner's main thread and its session worker.
import type { Normalization } from '../model/uint8-input.ts';

/** How a worker's ONNX Runtime session is made. */
export interface SessionOptions {
  executionProviders: string[];
  intraOpNumThreads: number;
  /** Pool threads spin between runs (a server under load; not a runner, whose main thread decodes meanwhile). */
  allowSpinning?: boolean | undefined;
  /**
   * ONNX Runtime's memory pattern (default on): runs after the first take their intermediate
   * tensors from one block laid out from the first run's, which the CPU arena keeps beside the
   * first run's chunks. A runner turns it off: the arena hands each tensor a chunk and reuses
   * the chunks run after run. Peak memory close to no arena's (bench:runner's models: 70 MiB
   * less than with the pattern for the 640 detector at batch 4, 35 for the classifier; 15 and 0
   * more than without the arena), at about the pattern's speed. Without the arena, as runners
   * ran before, every tensor was a fresh allocation (with RUNNER_PROCESS_ENV's malloc settings
   * a fresh mapping whose pages fault in on every run): 15% slower for the classifier, 25-35%
   * for the detector.
   */
  memoryPattern?: boolean | undefined;
  /**
   * The worker converts `uint8` batches (NHWC pixels) into the model's float NCHW input with this
   * normalization before each run (planar-float.ts), for a model that takes float input: on the
   * CPU, where the conversion in the graph costs ONNX Runtime's threads more (uint8ConversionSite).
   */
  uint8Conversion?: Normalization | undefined;
}
export type WorkerRequest =
  | ({ type: 'init'; model: ArrayBuffer } & SessionOptions)
  /** `uint8`: decoded pixels, for a model edited to take them (model/uint8-input.ts) or converted by the worker (`uint8Conversion`). */
  | { type: 'run'; id: number; data: ArrayBuffer; dims: number[]; dtype: 'float32' | 'uint8' }
  /** A run with every input named (the explainers' generated models take several). */
  | { type: 'runNamed'; id: number; inputs: Array<{ name: string; data: ArrayBuffer; dims: number[] }> };

export interface WorkerOutput {
  name: string;
  dims: number[];
  data: ArrayBuffer;
}

export type WorkerReply =
  | {
      type: 'ready';
      inputNames: string[];
      outputNames: string[];
      /** -1 for a dynamic dimension. */
      inputShape: number[];
      outputShapes: number[][];
      provider: string;
      warning: string | undefined;
      loadMs: number;
    }
  /** `input`: a `run`'s input buffer, handed back. */
  | { type: 'result'; id: number; outputs: WorkerOutput[]; ms: number; input?: ArrayBuffer | undefined }
  | { type: 'error'; id: number; message: string };
