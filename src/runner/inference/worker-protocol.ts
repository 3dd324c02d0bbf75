// Messages between the runner's main thread and its session worker.
export type WorkerRequest =
  /** allowSpinning: pool threads spin between runs (a server under load; not a runner, whose main thread decodes meanwhile). */
  | { type: 'init'; model: ArrayBuffer; executionProviders: string[]; intraOpNumThreads: number; allowSpinning?: boolean | undefined }
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
  | { type: 'result'; id: number; outputs: WorkerOutput[]; ms: number }
  | { type: 'error'; id: number; message: string };
