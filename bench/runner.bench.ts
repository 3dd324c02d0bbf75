// bench:runner — end-to-end runner throughput against raw ONNX Runtime, measured in the same run.
//
//   npm run bench:runner [-- --images 256 --batch 16 --repeats 3]
//
// Model: a generated ResNet-18-shaped classifier (11.7 M parameters). Inputs: 224x224 JPEGs.
// Baseline: `session.run` on pre-decoded tensors (bench/raw-session.ts), same batch and threads.
// Runner: the real runner process (src/runner/main.ts) over a file:// folder: read, decode,
// resize 256 + crop 224 + normalize, infer in its worker, rank, write images.jsonl + results.json
// and post callbacks to a FAKE callback receiver (this benchmark measures the runner alone).
// Figures are medians over the repeats; ratio = runner / raw. Peak RSS is each process's maxRSS.
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { cacheDir } from '../src/kube/local-cluster/binaries.ts';
import { noiseImage } from '../src/samples/images.ts';
import { buildResnet18 } from '../src/samples/resnet.ts';

const { values: args } = parseArgs({
  options: { images: { type: 'string', default: '256' }, batch: { type: 'string', default: '16' }, repeats: { type: 'string', default: '3' } },
});
const IMAGES = Number(args.images);
const BATCH = Number(args.batch);
const REPEATS = Number(args.repeats);
const THREADS = availableParallelism();
const cache = join(cacheDir(), 'bench');
const here = (rel: string) => fileURLToPath(new URL(rel, import.meta.url));

async function prepare(): Promise<{ model: string; images: string }> {
  const model = join(cache, 'resnet18-like.onnx');
  const images = join(cache, `jpeg224-${IMAGES}`);
  await mkdir(cache, { recursive: true });
  if (!existsSync(model)) await writeFile(model, buildResnet18());
  if (!existsSync(images) || (await readdir(images)).length !== IMAGES) {
    await mkdir(images, { recursive: true });
    for (let i = 0; i < IMAGES; i++) await writeFile(join(images, `img_${String(i).padStart(5, '0')}.jpg`), await noiseImage(224, 224, i));
  }
  return { model, images };
}

interface Figures {
  images_per_second: number;
  peak_rss_bytes: number;
}

async function raw(model: string): Promise<Figures> {
  const { stdout } = await promisify(execFile)(process.execPath, [here('./raw-session.ts'), model, String(BATCH), String(IMAGES), String(THREADS)]);
  return JSON.parse(stdout);
}

/** A FAKE callback service: accepts every callback and keeps the done payload. */
async function fakeCallbackReceiver() {
  let done: any;
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      if (req.url?.endsWith('/done')) done = JSON.parse(body);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"running","applied":true}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return { url: `http://127.0.0.1:${port}`, done: () => done, close: () => new Promise((r) => server.close(r)) };
}

async function runner(model: string, images: string): Promise<Figures & { wall_images_per_second: number }> {
  const receiver = await fakeCallbackReceiver();
  const artifacts = await mkdtemp(join(tmpdir(), 'kinfer-bench-'));
  const started = performance.now();
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn(process.execPath, [here('../src/runner/main.ts')], {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: {
        PATH: process.env.PATH,
        JOB_ID: randomUUID(),
        TRACE_ID: 'bench',
        INFERENCE_TYPE: 'dataset',
        INPUT_CONFIG: JSON.stringify({ dataset_path: images }),
        BACKEND_BASE_URL: receiver.url,
        CALLBACK_TOKEN: 'bench',
        TASK_TYPE: 'image_classification',
        CHECKPOINT_PATH: model,
        ARTIFACTS_URI: pathToFileURL(artifacts).href,
        BATCH_SIZE: String(BATCH),
        INTRA_OP_THREADS: String(THREADS),
      },
    });
    child.on('close', resolve);
  });
  const wallMs = performance.now() - started;
  const done = receiver.done();
  await receiver.close();
  await rm(artifacts, { recursive: true, force: true });
  if (code !== 0 || done?.status !== 'completed') throw new Error(`runner failed (exit ${code}): ${JSON.stringify(done)}`);
  if (process.env.BENCH_VERBOSE) process.stderr.write(`runner timings: ${JSON.stringify(done.timings)}\n`);
  return { images_per_second: done.timings.images_per_second, peak_rss_bytes: done.timings.peak_rss_bytes, wall_images_per_second: (IMAGES * 1000) / wallMs };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const mb = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;

const { model, images } = await prepare();
const raws: Figures[] = [];
const runs: Array<Figures & { wall_images_per_second: number }> = [];
for (let i = 0; i < REPEATS; i++) {
  raws.push(await raw(model));
  runs.push(await runner(model, images));
}
const rawIps = median(raws.map((r) => r.images_per_second));
const runIps = median(runs.map((r) => r.images_per_second));
const rows = [
  ['raw session.run, pre-decoded tensors', rawIps.toFixed(1), '1.00', mb(median(raws.map((r) => r.peak_rss_bytes)))],
  ['kinfer runner, JPEG in -> results out', runIps.toFixed(1), (runIps / rawIps).toFixed(2), mb(median(runs.map((r) => r.peak_rss_bytes)))],
  ['  same, wall clock incl. process start + model load', median(runs.map((r) => r.wall_images_per_second)).toFixed(1), (median(runs.map((r) => r.wall_images_per_second)) / rawIps).toFixed(2), ''],
];
process.stdout.write(`\nbench:runner  ResNet-18-like (11.7 M params), ${IMAGES} JPEG 224x224, batch ${BATCH}, ${THREADS} intra-op threads, median of ${REPEATS}\n\n`);
process.stdout.write(`| ${'measurement'.padEnd(52)} | images/s | ratio | peak RSS |\n|${'-'.repeat(54)}|---------:|------:|---------:|\n`);
for (const [name, ips, ratio, rss] of rows) process.stdout.write(`| ${name!.padEnd(52)} | ${ips!.padStart(8)} | ${ratio!.padStart(5)} | ${rss!.padStart(8)} |\n`);
process.stdout.write(`\nratio runner/raw = ${(runIps / rawIps).toFixed(3)} (goal >= 0.9)\n`);
