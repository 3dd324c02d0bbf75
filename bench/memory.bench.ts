// bench:memory — the runner's peak RSS as the dataset grows, in the same run at every size.
//
//   npm run bench:memory [-- --sizes 1000,10000,100000 --det-sizes 500,4000 --env KEY=VALUE,...]
//
// Classification: the colour classifier (src/samples/color-classifier.ts, 32x32 input) as a test
// run over an ImageFolder of small PNG/JPEG files (120 distinct pictures repeated), so the
// evaluation state is what it keeps for its metrics (counts). Detection: the shape detector over a
// COCO-layout dataset of generated pictures (src/samples/shape-datasets.ts): pycocotools'
// evaluation keeps every detection and every labelled object, so its memory grows with the
// dataset; the table gives the growth per 1,000 images.
// The runner is the real process (src/runner/main.ts) over file:// storage, reporting to a FAKE
// callback receiver (this measures the runner alone); peak RSS is the process's maxRSS at the
// end (model, worker thread, the scoring of every part included).
// Goal (issue 16): classification peak RSS at 100k images within 10% of its peak at 1k.
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { cacheDir } from '../src/local/cache-dir.ts';
import { buildColorClassifier } from '../src/samples/color-classifier.ts';
import { buildColorDataset } from '../src/samples/color-dataset.ts';
import { buildShapeDataset } from '../src/samples/shape-datasets.ts';
import { buildShapeModel } from '../src/samples/shape-models.ts';
import { fakeCallbackReceiver, runnerEnvArg, runRunnerProcess } from './fake-callback-receiver.ts';

const { values: args } = parseArgs({
  options: {
    sizes: { type: 'string', default: '1000,10000,100000' },
    'det-sizes': { type: 'string', default: '500,4000' },
    /** Extra runner environment for every run, KEY=VALUE,... (experiments). */
    env: { type: 'string', default: '' },
  },
});
const EXTRA_ENV = runnerEnvArg(args.env);
const cache = join(cacheDir(), 'bench', 'memory');

/** `count` images filed under their class folders, written once into the cache. */
async function classificationDataset(count: number): Promise<string> {
  const root = join(cache, `colors-${count}`);
  if (existsSync(join(root, '.complete'))) return root;
  const base = await buildColorDataset({ perClass: 20, seed: 3 });
  for (let i = 0; i < count; i++) {
    const f = base[i % base.length]!;
    const file = join(root, 'test', f.label, `${String(i).padStart(7, '0')}${f.path.slice(f.path.lastIndexOf('.'))}`);
    if (i < base.length) await mkdir(dirname(file), { recursive: true });
    await writeFile(file, f.bytes);
  }
  await writeFile(join(root, '.complete'), '');
  return root;
}

async function detectionDataset(count: number): Promise<string> {
  const root = join(cache, `shapes-${count}`);
  if (existsSync(join(root, '.complete'))) return root;
  const data = await buildShapeDataset('detect', { images: count, seed: 5 });
  for (const f of data.files) {
    await mkdir(dirname(join(root, f.path)), { recursive: true });
    await writeFile(join(root, f.path), f.bytes);
  }
  await writeFile(join(root, '.complete'), '');
  return root;
}

async function model(name: string, bytes: Uint8Array): Promise<string> {
  await mkdir(cache, { recursive: true });
  const file = join(cache, name);
  if (!existsSync(file)) await writeFile(file, bytes);
  return file;
}

interface Measured {
  images: number;
  seconds: number;
  peakRss: number;
  /** Scoring: every part read back, the evaluation, images.jsonl. */
  scoringMs: number;
  metric: string;
}

async function run(task: string, checkpoint: string, dataset: string, split: string, images: number): Promise<Measured> {
  const receiver = await fakeCallbackReceiver();
  const artifacts = await mkdtemp(join(tmpdir(), 'kinfer-bench-memory-'));
  const started = performance.now();
  const code = await runRunnerProcess({
    JOB_ID: randomUUID(),
    INFERENCE_TYPE: 'test_run',
    DATASET_PATH: pathToFileURL(dataset).href,
    SPLIT: split,
    BACKEND_BASE_URL: receiver.url,
    TASK_TYPE: task,
    CHECKPOINT_PATH: checkpoint,
    ARTIFACTS_URI: pathToFileURL(artifacts).href,
    BATCH_SIZE: '16',
    SAVE_VISUALIZATIONS: 'false',
    ...EXTRA_ENV,
  });
  const seconds = (performance.now() - started) / 1000;
  const done = receiver.done();
  await receiver.close();
  await rm(artifacts, { recursive: true, force: true });
  if (code !== 0 || done?.status !== 'completed') throw new Error(`runner failed (exit ${code}): ${JSON.stringify(done)?.slice(0, 500)}`);
  // The shape dataset plants a corrupt file beside the pictures: counted, as an error row.
  if (done.processed_images !== done.total_images || done.total_images < images)
    throw new Error(`runner processed ${done.processed_images} of ${done.total_images} images`);
  process.stderr.write(`${task} ${images}: ${(images / seconds).toFixed(0)} images/s, peak RSS ${(done.timings.peak_rss_bytes / 2 ** 20).toFixed(0)} MiB\n`);
  const m = done.metrics;
  return {
    images,
    seconds,
    peakRss: done.timings.peak_rss_bytes,
    scoringMs: done.timings.scoring_ms,
    metric: `${m.primary_metric_name} ${Number(m.primary_metric_value).toFixed(4)}`,
  };
}

const mib = (b: number) => b / 2 ** 20;
const rows: string[][] = [];
const verdicts: string[] = [];

function report(title: string, measured: Measured[], goal?: (first: Measured, last: Measured) => string) {
  const first = measured[0]!;
  const last = measured[measured.length - 1]!;
  rows.push([title, '', '', '', '']);
  for (const m of measured)
    rows.push([
      `  ${m.images.toLocaleString('en')} images (${m.metric}; scoring ${(m.scoringMs / 1000).toFixed(1)} s)`,
      (m.images / m.seconds).toFixed(0),
      mib(m.peakRss).toFixed(0),
      (m.peakRss / first.peakRss).toFixed(3),
      '',
    ]);
  const slope = (mib(last.peakRss) - mib(first.peakRss)) / ((last.images - first.images) / 1000);
  rows.push([`  growth per 1,000 images (${first.images.toLocaleString('en')} -> ${last.images.toLocaleString('en')})`, '', '', '', `${slope.toFixed(3)} MiB`]);
  if (goal) verdicts.push(goal(first, last));
}

const sizes = args.sizes.split(',').map(Number);
const colors = await model('colors.onnx', buildColorClassifier().model);
const classification: Measured[] = [];
for (const n of sizes) classification.push(await run('image_classification', colors, await classificationDataset(n), 'test', n));
report('classification test run: colour classifier, 32x32 input, small PNG/JPEG files', classification, (first, last) => {
  const ratio = last.peakRss / first.peakRss;
  return `classification: peak RSS at ${last.images.toLocaleString('en')} / at ${first.images.toLocaleString('en')} = ${ratio.toFixed(3)} (goal <= 1.10: ${ratio <= 1.1 ? 'met' : 'NOT met'})`;
});

const detSizes = args['det-sizes']
  .split(',')
  .map(Number)
  .filter((n) => n > 0);
if (detSizes.length > 0) {
  const shapes = await model('shapes-detect.onnx', buildShapeModel('detect'));
  const detection: Measured[] = [];
  for (const n of detSizes) detection.push(await run('object_detection', shapes, await detectionDataset(n), 'val', n));
  report('object-detection test run: shape detector, COCO annotations (pycocotools keeps every detection)', detection);
}

process.stdout.write(`\nbench:memory  runner peak RSS by dataset size, batch 16, no visualizations\n\n`);
process.stdout.write(
  `| ${'measurement'.padEnd(100)} | images/s | peak RSS (MiB) | vs smallest | slope |\n|${'-'.repeat(102)}|---------:|---------------:|------------:|------:|\n`,
);
for (const [name, ips, rss, ratio, slope] of rows)
  process.stdout.write(`| ${name!.padEnd(100)} | ${ips!.padStart(8)} | ${rss!.padStart(14)} | ${ratio!.padStart(11)} | ${slope!.padStart(5)} |\n`);
process.stdout.write(`\n${verdicts.join('\n')}\n`);
