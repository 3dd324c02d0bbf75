// A ResNet-18-shaped classifier (11.7 M parameters, BatchNorm folded into the convolutions) with
// random He-initialised weights: the size and cost of a real model, for benchmarks. Its
// predictions mean nothing. Preprocessing as torchvision: resize 256, center crop 224, ImageNet norm.
import { rng } from './images.ts';
import { GraphBuilder } from './onnx-writer.ts';

export function buildResnet18(opts: { numClasses?: number; seed?: number } = {}): Uint8Array {
  const numClasses = opts.numClasses ?? 1000;
  const random = rng(opts.seed ?? 18);
  const g = new GraphBuilder();
  let n = 0;
  const heWeights = (dims: number[], fanIn: number) => {
    const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
    const bound = Math.sqrt(6 / fanIn);
    for (let i = 0; i < data.length; i++) data[i] = (random() * 2 - 1) * bound;
    return g.weight(`w${n++}`, dims, data);
  };
  const conv = (x: string, cin: number, cout: number, k: number, stride: number, relu: boolean) => {
    const w = heWeights([cout, cin, k, k], cin * k * k);
    const b = g.weight(`b${n++}`, [cout], new Float32Array(cout));
    const pad = Math.floor(k / 2);
    const y = g.node('Conv', [x, w, b], { kernel_shape: { ints: [k, k] }, strides: { ints: [stride, stride] }, pads: { ints: [pad, pad, pad, pad] } });
    return relu ? g.node('Relu', [y]) : y;
  };
  const block = (x: string, cin: number, cout: number, stride: number) => {
    const h = conv(conv(x, cin, cout, 3, stride, true), cout, cout, 3, 1, false);
    const shortcut = stride !== 1 || cin !== cout ? conv(x, cin, cout, 1, stride, false) : x;
    return g.node('Relu', [g.node('Add', [h, shortcut])]);
  };

  let x = g.input('images', ['batch', 3, 224, 224]);
  x = conv(x, 3, 64, 7, 2, true);
  x = g.node('MaxPool', [x], { kernel_shape: { ints: [3, 3] }, strides: { ints: [2, 2] }, pads: { ints: [1, 1, 1, 1] } });
  let channels = 64;
  for (const [cout, stride] of [
    [64, 1],
    [128, 2],
    [256, 2],
    [512, 2],
  ] as const) {
    x = block(x, channels, cout, stride);
    x = block(x, cout, cout, 1);
    channels = cout;
  }
  const pooled = g.node('Flatten', [g.node('GlobalAveragePool', [x])], { axis: { i: 1 } });
  const fcW = heWeights([channels, numClasses], channels);
  const logits = g.node('Gemm', [pooled, fcW, g.weight(`b${n++}`, [numClasses], new Float32Array(numClasses))]);
  g.node('Softmax', [logits], { axis: { i: 1 } }, 'output0');
  g.output('output0', ['batch', numClasses]);
  return g.toModel({
    name: 'resnet18-like',
    metadata: {
      task: 'classify',
      imgsz: '[224, 224]',
      names: `{${Array.from({ length: numClasses }, (_, i) => `${i}: 'class_${i}'`).join(', ')}}`,
      'kinfer.resize': '256',
      'kinfer.mean': '[0.485, 0.456, 0.406]',
      'kinfer.std': '[0.229, 0.224, 0.225]',
    },
  });
}
