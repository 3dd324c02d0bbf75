// Main-thread handle to the session worker: one `run` at a time per worker, awaited as a promise.
import { Worker } from 'node:worker_threads';
import { disableOrtTelemetry } from './ort-telemetry.ts';
import type { SessionOptions, WorkerOutput, WorkerReply, WorkerRequest } from './worker-protocol.ts';

export type { SessionOptions };

export type SessionInfo = Extract<WorkerReply, { type: 'ready' }>;

export interface RunOutput {
  outputs: WorkerOutput[];
  ms: number;
}

export class ModelLoadError extends Error {
  readonly code = 'MODEL_LOAD_FAILED';
  constructor(message: string) {
    super(message);
    this.name = 'ModelLoadError';
  }
}

/**
 * Input buffers that runs handed back, by size, for later batches to be written into: a batch is
 * megabytes (4 x 640 x 640 x 3 for a detector), and a fresh one per batch cost page faults and
 * garbage collection on the thread that decodes images. A few of each size: two batches are in
 * flight at most, each in one part a session it is split over.
 */
export class InputBuffers {
  readonly #bySize = new Map<number, ArrayBuffer[]>();
  readonly #keep: number;

  /** `keep`: buffers kept of each size (3 for one session: two batches in flight, and one spare). */
  constructor(keep = 3) {
    this.#keep = keep;
  }

  take(bytes: number): ArrayBuffer {
    let spares = this.#bySize.get(bytes);
    if (!spares) this.#bySize.set(bytes, (spares = []));
    return spares.pop() ?? new ArrayBuffer(bytes);
  }

  /** Kept only in sizes taken before: other runs' inputs (explanations, v2 tensors) would never be taken. */
  give(buffer: ArrayBuffer): void {
    const spares = this.#bySize.get(buffer.byteLength);
    if (spares && spares.length < this.#keep) spares.push(buffer);
  }
}

export class WorkerSession {
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve: (r: RunOutput) => void; reject: (e: Error) => void }>();
  #nextId = 1;
  #ready: Promise<SessionInfo>;
  /** Called once no run is pending any more (close waits for it). */
  #onIdle: (() => void) | undefined;
  readonly #spareInputs: InputBuffers;

  private constructor(model: Uint8Array, options: SessionOptions, transferModel: boolean, spares: InputBuffers) {
    this.#spareInputs = spares;
    // Here, on the main thread, before the worker creates the process's first session.
    disableOrtTelemetry();
    this.#worker = new Worker(new URL('./session-worker.ts', import.meta.url));
    this.#ready = new Promise((resolve, reject) => {
      const onMessage = (msg: WorkerReply) => {
        if (msg.type === 'ready') resolve(msg);
        else if (msg.type === 'error' && msg.id === -1) reject(new ModelLoadError(`cannot load the model: ${msg.message}`));
        else this.#settle(msg);
      };
      this.#worker.on('message', onMessage);
      this.#worker.on('error', (err: Error) => {
        reject(err);
        this.#failAll(err);
      });
      this.#worker.on('exit', (code) => this.#failAll(new Error(`inference worker exited with code ${code}`)));
    });
    // A model whose caller gives it up and that owns its whole ArrayBuffer (an edited model, built
    // by the runner) is handed over as it is: a model is tens of MB, and a copy fewer lowers the
    // peak. Others are copied: the caller may keep its buffer, and Buffers from some sources (the
    // S3 client, Node's pool) are not transferable.
    const owned = transferModel && model.byteOffset === 0 && model.byteLength === model.buffer.byteLength && model.buffer instanceof ArrayBuffer;
    let buffer: ArrayBuffer;
    if (owned) buffer = model.buffer as ArrayBuffer;
    else {
      buffer = new ArrayBuffer(model.byteLength);
      new Uint8Array(buffer).set(model);
    }
    this.#post({ type: 'init', model: buffer, ...options }, [buffer]);
  }

  /** Runs handed to the worker and not answered yet. */
  get pending(): number {
    return this.#pending.size;
  }

  static async open(
    model: Uint8Array,
    opts: SessionOptions & {
      /** The caller gives the model's buffer up: it may be detached after this call. */
      transferModel?: boolean | undefined;
      /** Where inputArray takes its buffers and runs give them back: shared by the sessions a batch is split over. */
      inputBuffers?: InputBuffers | undefined;
    },
  ): Promise<{ session: WorkerSession; info: SessionInfo }> {
    // Only the session's options travel to the worker (callers pass wider objects).
    const { executionProviders, intraOpNumThreads, allowSpinning, memoryPattern, uint8Conversion } = opts;
    const options = { executionProviders, intraOpNumThreads, allowSpinning, memoryPattern, uint8Conversion };
    const session = new WorkerSession(model, options, opts.transferModel ?? false, opts.inputBuffers ?? new InputBuffers());
    try {
      return { session, info: await session.#ready };
    } catch (err) {
      await session.close();
      throw err;
    }
  }

  /**
   * An array of `length` elements for a batch's input, its buffer one that an earlier run handed
   * back when there is one (InputBuffers). Holds what the earlier batch left in it: the caller
   * writes every element.
   */
  inputArray(type: 'uint8', length: number): Uint8Array;
  inputArray(type: 'float32', length: number): Float32Array;
  inputArray(type: 'uint8' | 'float32', length: number): Uint8Array | Float32Array {
    const buffer = this.#spareInputs.take(type === 'uint8' ? length : length * 4);
    return type === 'uint8' ? new Uint8Array(buffer) : new Float32Array(buffer);
  }

  /**
   * Runs one batch: float32 NCHW, or uint8 NHWC pixels for a model that takes them. `data` is
   * transferred to the worker (the caller must not reuse it).
   */
  run(data: Float32Array | Uint8Array, dims: number[]): Promise<RunOutput> {
    const id = this.#nextId++;
    const buffer = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? (data.buffer as ArrayBuffer) : (data.slice().buffer as ArrayBuffer);
    const dtype = data instanceof Uint8Array ? 'uint8' : 'float32';
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#post({ type: 'run', id, data: buffer, dims, dtype }, [buffer]);
    });
  }

  /** Runs with every input named; the buffers are copied, the caller keeps its arrays. */
  runNamed(inputs: Array<{ name: string; data: Float32Array; dims: number[] }>): Promise<RunOutput> {
    const id = this.#nextId++;
    const copies = inputs.map((i) => ({ name: i.name, data: i.data.slice().buffer as ArrayBuffer, dims: i.dims }));
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#post(
        { type: 'runNamed', id, inputs: copies },
        copies.map((c) => c.data),
      );
    });
  }

  /**
   * Stops the worker once the runs handed to it are over: terminating it while ONNX Runtime runs
   * in it aborts the whole process (onnxruntime-node throws from native code as the thread is torn
   * down), so a runner stopped by SIGTERM would die of SIGABRT instead of reporting. A run takes a
   * batch's time at most; the caller's grace period bounds the wait.
   */
  async close(): Promise<void> {
    if (this.#pending.size > 0) {
      const before = this.#onIdle; // a close already waiting
      await new Promise<void>((resolve) => (this.#onIdle = () => (before?.(), resolve())));
    }
    await this.#worker.terminate();
  }

  #post(msg: WorkerRequest, transfer: ArrayBuffer[]): void {
    this.#worker.postMessage(msg, transfer);
  }

  #settle(msg: WorkerReply): void {
    if (msg.type === 'ready') return;
    const pending = this.#pending.get(msg.id);
    if (!pending) return;
    this.#pending.delete(msg.id);
    if (this.#pending.size === 0) this.#onIdle?.();
    if (msg.type === 'result') {
      if (msg.input) this.#spareInputs.give(msg.input);
      pending.resolve({ outputs: msg.outputs, ms: msg.ms });
    } else pending.reject(new Error(`inference failed: ${msg.message}`));
  }

  #failAll(err: Error): void {
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
    this.#onIdle?.();
  }
}
