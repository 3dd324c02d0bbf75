// Worker thread that owns the ONNX Runtime session. `session.run` blocks the thread it runs on,
// so it lives here and the main thread keeps decoding images and sending callbacks meanwhile.
import { parentPort } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import { PlanarFloatConverter } from './planar-float.ts';
import type { SessionOptions, WorkerReply, WorkerRequest } from './worker-protocol.ts';

if (!parentPort) throw new Error('session-worker must run in a worker thread');
const port = parentPort;
let session: ort.InferenceSession | undefined;
let converter: PlanarFloatConverter | undefined;

async function createSession(model: Uint8Array, o: SessionOptions): Promise<{ session: ort.InferenceSession; provider: string; warning?: string }> {
  const providers = o.executionProviders;
  const options = (eps: string[]): ort.InferenceSession.SessionOptions => ({
    executionProviders: eps,
    intraOpNumThreads: o.intraOpNumThreads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    enableMemPattern: o.memoryPattern ?? true,
    // Spinning pool threads would steal the cores that decode a runner's next batch meanwhile;
    // a predictor under load gains from it (bench:predict).
    extra: { session: { intra_op: { allow_spinning: o.allowSpinning || process.env.KINFER_ORT_SPINNING === '1' ? '1' : '0' } } },
  });
  try {
    return { session: await ort.InferenceSession.create(model, options(providers)), provider: providers[0] ?? 'cpu' };
  } catch (err) {
    if (providers.length === 1 && providers[0] === 'cpu') throw err;
    // A GPU provider that cannot load (no driver, no CUDA libraries) must not fail the job.
    return {
      session: await ort.InferenceSession.create(model, options(['cpu'])),
      provider: 'cpu',
      warning: `execution providers [${providers.join(', ')}] unavailable (${(err as Error).message.split('\n')[0]}); fell back to cpu`,
    };
  }
}

function reply(msg: WorkerReply, transfer: ArrayBuffer[] = []): void {
  port.postMessage(msg, transfer);
}

async function handle(msg: WorkerRequest): Promise<void> {
  try {
    if (msg.type === 'init') {
      const started = performance.now();
      const { type: _, model, ...options } = msg;
      const created = await createSession(new Uint8Array(model), options);
      session = created.session;
      if (msg.uint8Conversion) converter = new PlanarFloatConverter(msg.uint8Conversion);
      const input = session.inputNames[0]!;
      const inputMeta = session.inputMetadata.find((m) => m.name === input);
      reply({
        type: 'ready',
        inputNames: [...session.inputNames],
        outputNames: [...session.outputNames],
        inputShape: inputMeta && inputMeta.isTensor ? inputMeta.shape.map((d) => (typeof d === 'number' ? d : -1)) : [],
        outputShapes: session.outputMetadata.map((m) => (m.isTensor ? m.shape.map((d) => (typeof d === 'number' ? d : -1)) : [])),
        provider: created.provider,
        warning: created.warning,
        loadMs: performance.now() - started,
      });
      return;
    }
    if (!session) throw new Error('session not initialised');
    const started = performance.now();
    const feeds =
      msg.type === 'runNamed'
        ? Object.fromEntries(msg.inputs.map((i) => [i.name, new ort.Tensor('float32', new Float32Array(i.data), i.dims)]))
        : { [session.inputNames[0]!]: inputTensor(msg) };
    const results = await session.run(feeds);
    const outputs = session.outputNames.map((name) => {
      const t = results[name]!;
      const data = t.data as Float32Array;
      // An output owns its buffer (a fresh one per run): handed over as it is, not copied.
      const whole = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && data.buffer instanceof ArrayBuffer;
      return {
        name,
        dims: [...t.dims],
        data: whole ? (data.buffer as ArrayBuffer) : (data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer),
      };
    });
    // A batch's input goes back for the next batch to be written into (see WorkerSession.inputArray).
    const input = msg.type === 'run' ? msg.data : undefined;
    reply({ type: 'result', id: msg.id, outputs, ms: performance.now() - started, input }, [...outputs.map((o) => o.data), ...(input ? [input] : [])]);
  } catch (err) {
    reply({ type: 'error', id: msg.type === 'init' ? -1 : msg.id, message: (err as Error).message });
  }
}

/** A batch's input: float32 as sent, or uint8 pixels converted here (`uint8Conversion`) or by the model's own nodes. */
function inputTensor({ data, dims, dtype }: Extract<WorkerRequest, { type: 'run' }>): ort.Tensor {
  if (dtype === 'float32') return new ort.Tensor('float32', new Float32Array(data), dims);
  if (!converter) return new ort.Tensor('uint8', new Uint8Array(data), dims);
  const [n, h, w, c] = dims;
  return new ort.Tensor('float32', converter.convert(new Uint8Array(data), dims), [n!, c!, h!, w!]);
}

// One request after the other: onnxruntime-node starts a run on a later turn of the event loop
// (setImmediate), so a batch converted at once could overwrite the converter's memory while the
// batch before it waits for its run. handle() answers every request itself, errors included.
let turn = Promise.resolve();
port.on('message', (msg: WorkerRequest) => {
  turn = turn
    .then(() => handle(msg))
    // Only a failed reply gets here: thrown outside the chain, it ends the worker (every pending
    // run then fails with it) instead of stopping the requests after it unanswered.
    .catch((err: unknown) =>
      process.nextTick(() => {
        throw err;
      }),
    );
});
