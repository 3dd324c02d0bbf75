// A pipeline whose report fails (a stopped runner's callback throws) while the next batch is still
// in the session worker: the report's error comes out of processImages, and closing the session
// then waits for that batch instead of tearing the worker down under ONNX Runtime (which aborts
// the process) or leaving its run to reject unhandled (which exits with code 1). Run in a child
// process, as the runner is: a Kubernetes-tier CI run saw a runner exit with code 1 after SIGTERM,
// "inference worker exited with code 1", where it should have reported and exited with 143.
// And a batch reported in full gives its memory back at once: the outputs' buffers (the worker's
// transfer) and the decoded inputs are detached, never before the last row is interpreted; inputs
// from the letterbox's pool go back to it instead, and to later images only once reported.
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { buildYoloLike } from '../../src/samples/yolo-like.ts';

const src = (rel: string) => fileURLToPath(new URL(`../../src/${rel}`, import.meta.url));

const SCRIPT = `
import { readFileSync } from 'node:fs';
import { WorkerSession } from ${JSON.stringify(src('runner/inference/inference-session.ts'))};
import { ObjectStore } from ${JSON.stringify(src('runner/io/object-store.ts'))};
import { processImages } from ${JSON.stringify(src('runner/pipeline/process-images.ts'))};
import { pixelBuffers } from ${JSON.stringify(src('runner/image/buffer-pool.ts'))};

const [modelPath, imagePath, mode] = process.argv.slice(2);
const { session } = await WorkerSession.open(readFileSync(modelPath), { executionProviders: ['cpu'], intraOpNumThreads: 1 });
const model = { session, sessions: [session], metadata: { inputSize: [640, 640] }, fixedBatch: undefined, inputLayout: 'float32-nchw' };
let runs = 0;
const run = session.run.bind(session);
session.run = (...args) => (runs++, run(...args));
// A task whose images are all zeros: what matters is when the batches run and are reported.
const inputs = [];
const outputs = new Set();
let detachedAtInterpret = 0;
const pooled = mode === 'pooled';
const reads = mode === 'reads';
const images = pooled ? 32 : reads ? 24 : 8;
// Reads: each takes 30 ms (a remote store's round trip), images 5 and 17 are missing; decodes take 2 ms.
const missing = new Set(reads ? [5, 17] : []);
let readsInFlight = 0;
let maxReads = 0;
let decodesInFlight = 0;
let maxDecodes = 0;
const order = [];
const errors = [];
const store = new ObjectStore({ region: 'us-east-1' });
if (reads) {
  const read = store.read.bind(store);
  store.read = async (uri) => {
    maxReads = Math.max(maxReads, ++readsInFlight);
    try {
      await new Promise((r) => setTimeout(r, 30));
      return await read(uri);
    } finally {
      readsInFlight--;
    }
  };
}
// Pooled: which image holds each buffer, and buffers taken again before that image's batch was reported.
let reported = 0;
const holder = new Map();
let reusedEarly = 0;
const task = {
  prepare: async (_bytes, sample) => {
    maxDecodes = Math.max(maxDecodes, ++decodesInFlight);
    if (reads) await new Promise((r) => setTimeout(r, 2));
    decodesInFlight--;
    // A letterbox canvas's size (the float input takes its bytes as values).
    const tensor = pooled ? pixelBuffers.take(3 * 640 * 640) : new Float32Array(3 * 640 * 640);
    const held = holder.get(tensor.buffer);
    if (held !== undefined && reported < (Math.floor(held / 4) + 1) * 4) reusedEarly++;
    holder.set(tensor.buffer, sample.index);
    inputs.push(tensor);
    return { tensor, context: null };
  },
  interpret: async (out) => {
    out.forEach((o) => outputs.add(o));
    detachedAtInterpret += out.filter((o) => o.data.detached).length;
    return { fields: {}, record: null };
  },
  unreadable: () => ({ fields: {}, record: null }),
};
const source = {
  total: images,
  classNames: [],
  async *samples() {
    for (let index = 0; index < images; index++) yield { index, uri: 'file://' + imagePath + (missing.has(index) ? '.missing' : ''), name: 'img' + index };
  },
};
let message;
try {
  await processImages(store, model, task, source, {
    batchSize: mode === 'stop' ? 1 : 4,
    decodeConcurrency: reads ? 2 : 1,
    readConcurrency: reads ? 8 : undefined,
    onResult: (result) => {
      order.push(result.image_index);
      if (result.error !== null) errors.push([result.image_index, result.error]);
      if (mode === 'stop') throw new Error('stopped while reporting');
      reported++;
    },
  });
} catch (err) {
  message = err.message;
}
await session.close();
// Past the close: an abort or an unhandled rejection would have ended the process by now.
await new Promise((r) => setTimeout(r, 200));
const detached = (buffers) => buffers.filter((b) => b.detached).length;
console.log(JSON.stringify({
  message,
  runs,
  outputs: outputs.size,
  outputsDetached: detached([...outputs].map((o) => o.data)),
  detachedAtInterpret,
  inputs: inputs.length,
  inputsDetached: detached(inputs.map((t) => t.buffer)),
  distinctInputBuffers: new Set(inputs.map((t) => t.buffer)).size,
  reusedEarly,
  maxReads,
  maxDecodes,
  order,
  errors,
}));
`;

interface Outcome {
  message?: string;
  runs: number;
  outputs: number;
  outputsDetached: number;
  detachedAtInterpret: number;
  inputs: number;
  inputsDetached: number;
  distinctInputBuffers: number;
  reusedEarly: number;
  maxReads: number;
  maxDecodes: number;
  order: number[];
  errors: Array<[number, string]>;
}

/**
 * Runs the pipeline in a new Node process: 'stop' fails every report, 'release' takes them all (8
 * images each), 'pooled' takes 32 images whose inputs come from the letterbox's pool, 'reads' 24
 * images read slowly, two of them missing.
 */
async function pipeline(mode: 'stop' | 'release' | 'pooled' | 'reads'): Promise<{ out: Outcome; stderr: string }> {
  const dir = mkdtempSync(join(process.env.KINFER_TEST_DIR!, 'pipeline-'));
  writeFileSync(join(dir, 'model.onnx'), buildYoloLike().model);
  writeFileSync(join(dir, 'image.bin'), 'not read by the task');
  writeFileSync(join(dir, 'script.ts'), SCRIPT);
  const { stdout, stderr } = await promisify(execFile)(process.execPath, [join(dir, 'script.ts'), join(dir, 'model.onnx'), join(dir, 'image.bin'), mode]).catch(
    (err: { code: number; stdout: string; stderr: string }) => {
      throw new Error(`the process exited with code ${err.code}: ${err.stderr}`);
    },
  );
  return { out: JSON.parse(stdout.trim().split('\n').pop()!) as Outcome, stderr };
}

describe('processImages stopped while reporting', () => {
  it('throws the report error; closing the session waits for the batch still in the worker, and the process ends normally', async () => {
    const { out, stderr } = await pipeline('stop');
    expect(stderr).not.toMatch(/inference worker exited/);
    expect(out.message).toBe('stopped while reporting');
    // The second batch was handed to the worker before the first one's report failed: the case.
    expect(out.runs).toBeGreaterThanOrEqual(2);
  }, 60_000);
});

describe('processImages reporting a batch', () => {
  it("frees every output and input buffer once the batch's rows are all reported, and none before", async () => {
    const { out } = await pipeline('release');
    expect(out.message).toBeUndefined();
    // 8 images in batches of 4; the YOLO-like model has one output.
    expect(out.runs).toBe(2);
    expect(out.outputs).toBe(2);
    expect(out.outputsDetached).toBe(2);
    expect(out.detachedAtInterpret).toBe(0);
    expect(out.inputs).toBe(8);
    expect(out.inputsDetached).toBe(8);
  }, 60_000);
});

describe('processImages reporting batches of pooled inputs', () => {
  it('gives the inputs back to the pool once their batch is reported, and later images take them', async () => {
    const { out } = await pipeline('pooled');
    expect(out.message).toBeUndefined();
    expect(out.runs).toBe(8);
    expect(out.outputsDetached).toBe(8);
    expect(out.inputs).toBe(32);
    // Back in the pool or with a later image: none freed, some taken again, none too early.
    expect(out.inputsDetached).toBe(0);
    expect(out.distinctInputBuffers).toBeLessThan(32);
    expect(out.reusedEarly).toBe(0);
  }, 60_000);
});

describe('processImages reading from a slow store', () => {
  it('keeps READ_CONCURRENCY reads in flight while DECODE_CONCURRENCY bounds the decodes, results in listing order', async () => {
    const { out } = await pipeline('reads');
    expect(out.message).toBeUndefined();
    expect(out.maxReads).toBe(8);
    expect(out.maxDecodes).toBe(2);
    expect(out.order).toEqual(Array.from({ length: 24 }, (_, i) => i));
    // A missing image is its own error entry; the others go on.
    expect(out.errors.map(([i]) => i)).toEqual([5, 17]);
    for (const [, error] of out.errors) expect(error).toMatch(/not found: file:.*\.missing/);
    expect(out.runs).toBe(6); // 22 images in batches of 4
  }, 60_000);
});
