// The README's explanation pictures: one overlay per method, made by the runner's own code on a
// picture of the shapes dataset, with a small CNN written here whose answer is known: per colour
// class a 1x1 convolution that responds to that colour, ReLU, a 5x5 convolution that spreads it,
// ReLU (the target layer), global pooling, a linear layer and softmax. It calls the picture by the
// colour that covers most of it, so a faithful explanation lights up that shape.
//
//   npm run xai:gallery   (writes docs/xai/*.jpg)
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import type { XaiMethod } from '../src/contract/index.ts';
import { preprocessClassificationWithGeometry } from '../src/runner/classification/preprocess.ts';
import { openExplainer, overlay, rowsByName } from '../src/runner/xai/explainer.ts';
import type { XaiGeometry } from '../src/runner/xai/overlay.ts';
import { GraphBuilder } from '../src/samples/onnx-writer.ts';
import { renderShapes } from '../src/samples/shape-datasets.ts';

function colourCnn(): Uint8Array {
  const g = new GraphBuilder();
  const x = g.input('images', ['batch', 3, 224, 224]);
  // Channel c: x_c - (x_other1 + x_other2) / 2 - 0.2, positive where colour c dominates.
  const w1 = new Float32Array(9);
  for (let c = 0; c < 3; c++) for (let i = 0; i < 3; i++) w1[c * 3 + i] = c === i ? 1 : -0.5;
  const b1 = new Float32Array(3).fill(-0.2);
  const colours = g.node('Relu', [g.node('Conv', [x, g.weight('w1', [3, 3, 1, 1], w1), g.weight('b1', [3], b1)], { kernel_shape: { ints: [1, 1] } })]);
  const w2 = new Float32Array(3 * 3 * 25);
  for (let c = 0; c < 3; c++) for (let k = 0; k < 25; k++) w2[(c * 3 + c) * 25 + k] = 1 / 25;
  const spread = g.node(
    'Relu',
    [
      g.node('Conv', [colours, g.weight('w2', [3, 3, 5, 5], w2), g.weight('b2', [3], new Float32Array(3))], {
        kernel_shape: { ints: [5, 5] },
        pads: { ints: [2, 2, 2, 2] },
      }),
    ],
    {},
    'features',
  );
  const pooled = g.node('Flatten', [g.node('GlobalAveragePool', [spread])]);
  const eye = new Float32Array(9);
  for (let c = 0; c < 3; c++) eye[c * 3 + c] = 30;
  g.node('Softmax', [g.node('Gemm', [pooled, g.weight('fc', [3, 3], eye), g.weight('fcb', [3], new Float32Array(3))])], { axis: { i: 1 } }, 'output0');
  g.output('output0', ['batch', 3]);
  return g.toModel({ metadata: { task: 'classify', names: "{0: 'red', 1: 'green', 2: 'blue'}", imgsz: '[224, 224]' } });
}

const out = join(import.meta.dirname, '..', 'docs', 'xai');
mkdirSync(out, { recursive: true });
const picture = await renderShapes(320, 240, [
  { classId: 0, box: [30, 40, 90, 70] },
  { classId: 1, box: [170, 60, 100, 120] },
  { classId: 2, box: [60, 150, 70, 60] },
]);
writeFileSync(join(out, 'input.png'), await sharp(picture).png().toBuffer());
const model = colourCnn();
const metadata = {
  inputSize: [224, 224] as [number, number],
  resizeShorter: 224,
  interpolation: 'bilinear' as const,
  mean: [0, 0, 0] as [number, number, number],
  std: [1, 1, 1] as [number, number, number],
};
const { tensor: prepared, geometry: crop } = await preprocessClassificationWithGeometry(picture, metadata);
const tensor = prepared as Float32Array;
const sx = crop.resized.width / crop.original.width;
const sy = crop.resized.height / crop.original.height;
const geometry: XaiGeometry = {
  original: crop.original,
  input: { width: 224, height: 224 },
  toNetwork: (x, y) => [x * sx - crop.left, y * sy - crop.top],
  toOriginal: (x, y) => [(x + crop.left) / sx, (y + crop.top) / sy],
};
for (const method of ['gradcam', 'hirescam', 'gradcampp', 'scorecam', 'eigencam', 'lime', 'shap'] as XaiMethod[]) {
  const { explainer, session, outputNames, close } = await openExplainer(model, method, {
    inputShape: [224, 224],
    numSamples: 500,
    threads: availableParallelism(),
  });
  const { outputs } = await session.run(tensor.slice(), [1, 3, 224, 224]);
  const rows = rowsByName(outputNames, outputs, 0);
  const probs = rows.get(outputNames[0]!)!.data;
  const target = probs.indexOf(Math.max(...probs));
  const { map } = await explainer.explain({ input: tensor, outputs: rows, targetClass: target, classNames: ['red', 'green', 'blue'], geometry });
  if (method === 'gradcam') console.log(`the model says ${['red', 'green', 'blue'][target]} (${(probs[target]! * 100).toFixed(1)}%)`);
  writeFileSync(join(out, `${method}.jpg`), await overlay(picture, map, geometry));
  await close();
  console.log(`docs/xai/${method}.jpg`);
}
