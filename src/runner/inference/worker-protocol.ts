// Messages between the runner's main thread and its session worker.

/** How a worker's ONNX Runtime session is made. */
export interface SessionOptions {
  executionProviders: string[];
  intraOpNumThreads: number;
  /** Pool threads spin between runs (a server under load; not a runner, whose main thread decodes meanwhile). */
  allowSpinning?: boolean | undefined;
  /**
   * ONNX Runtime's CPU memory arena (default on): it keeps the largest a run ever needed reserved,
   * in chunks that grow by powers of two. A server reuses it request after request; a runner gives
   * it up, its tensors then freed after each run (with the runner's malloc settings,
   * RUNNER_PROCESS_ENV, back to the system): 60-100 MiB less at the peak, at the same speed (bench:runner).
   */
  memoryArena?: boolean | undefined;
}
export type WorkerRequest =
  | ({ type: 'init'; model: ArrayBuffer } & SessionOptions)
  /** `uint8`: decoded pixels for a model edited to take them (model/uint8-input.ts). */
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
