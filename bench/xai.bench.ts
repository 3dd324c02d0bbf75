// bench:xai — milliseconds per image of each explanation method, beside plain inference of the
// same model in the same run.
//
//   npm run bench:xai [-- --images 4 --samples 1000]
//
// Model: the generated ResNet-18-shaped classifier (11.7 M parameters, 224x224 input, 1000
// classes); target layer: the last block (what the global pooling reads), 512 x 7 x 7. Baseline:
// `session.run` of one image in the same worker session the explainer uses. Each method: the
// explainer's whole work for one image (its extra model runs, the map, the details,
// faithfulness), excluding file writing. LIME: `--samples` perturbations through the session in
// batches of 16; SHAP: every coalition of up to 10 superpixels; ScoreCAM: one run per
// channel of the target layer (512). Goal (issue 12): the Grad-CAM family within 2x plain
// inference per image.
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import type { XaiMethod } from '../src/contract/index.ts';
import { openExplainer, rowsByName } from '../src/runner/xai/explainer.ts';
import type { XaiGeometry } from '../src/runner/xai/overlay.ts';
import { rng } from '../src/samples/images.ts';
import { buildResnet18 } from '../src/samples/resnet.ts';

const { values: args } = parseArgs({ options: { images: { type: 'string', default: '4' }, samples: { type: 'string', default: '1000' } } });
const IMAGES = Number(args.images);
const SAMPLES = Number(args.samples);
const SIZE = 224;
const THREADS = availableParallelism();

const model = buildResnet18();
const random = rng(7);
const inputs = Array.from({ length: IMAGES }, () => Float32Array.from({ length: 3 * SIZE * SIZE }, () => random() * 2 - 1));
const geometry: XaiGeometry = {
  original: { width: SIZE, height: SIZE },
  input: { width: SIZE, height: SIZE },
  toNetwork: (x, y) => [x, y],
  toOriginal: (x, y) => [x, y],
};

const rows: Array<{ method: string; plain: number; explain: number }> = [];
let shapPlayers = 0;
let limeSuperpixels = 0;
for (const method of (process.env.BENCH_XAI_METHODS?.split(',') ?? [
  'gradcam',
  'hirescam',
  'gradcampp',
  'eigencam',
  'scorecam',
  'lime',
  'shap',
]) as XaiMethod[]) {
  const { explainer, session, outputNames, close } = await openExplainer(model, method, { inputShape: [SIZE, SIZE], numSamples: SAMPLES, threads: THREADS });
  // One warm-up image (session and kernels), then the measured ones.
  const images = method === 'scorecam' ? inputs.slice(0, Math.max(1, Math.min(2, IMAGES))) : inputs;
  let plain = 0;
  let explain = 0;
  for (const [k, input] of [inputs[0]!, ...images].entries()) {
    const t0 = performance.now();
    const { outputs } = await session.run(input.slice(), [1, 3, SIZE, SIZE]);
    const t1 = performance.now();
    const rowsOut = rowsByName(outputNames, outputs, 0);
    const probs = rowsOut.get(outputNames[0]!)!.data;
    let best = 0;
    for (let c = 1; c < probs.length; c++) if (probs[c]! > probs[best]!) best = c;
    const { result } = await explainer.explain({ input, outputs: rowsOut, targetClass: best, classNames: [], geometry });
    if (result.shap) shapPlayers = result.shap.shap_values.length;
    if (result.lime) limeSuperpixels = result.lime.superpixels;
    const t2 = performance.now();
    if (k === 0) continue;
    plain += t1 - t0;
    explain += t2 - t1;
  }
  rows.push({ method, plain: plain / images.length, explain: explain / images.length });
  await close();
  process.stderr.write(`${method} done\n`);
}

const fmt = (v: number) => v.toFixed(1).padStart(10);
console.log(
  `\nbench:xai  ResNet-18-shaped, ${SIZE}x${SIZE}, ${THREADS} threads, ${IMAGES} images (ScoreCAM: ${Math.min(2, IMAGES)}), LIME ${SAMPLES} samples over ${limeSuperpixels} superpixels, SHAP every coalition of ${shapPlayers} superpixels (${2 ** shapPlayers} runs)\n`,
);
console.log(`${'method'.padEnd(12)}${'plain ms'.padStart(10)}${'xai ms'.padStart(10)}${'xai/plain'.padStart(11)}`);
for (const r of rows) console.log(`${r.method.padEnd(12)}${fmt(r.plain)}${fmt(r.explain)}${(r.explain / r.plain).toFixed(2).padStart(11)}`);
