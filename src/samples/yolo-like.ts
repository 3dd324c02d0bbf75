// A detector with YOLOv8n's input, output and cost (640x640 in, [B, 84, 8400] out from strides
// 8/16/32, ~3 M parameters, ~6 GFLOPs; SiLU convolutions, BatchNorm folded) and random
// He-initialised weights: for benchmarks, its boxes mean nothing. Class logits are biased low,
// as a trained model's mostly are, so that some anchors per image pass the 0.25 threshold and
// NMS has real work to do (the benchmark prints how many objects per image remain).
import { rng } from './images.ts';
import { GraphBuilder } from './onnx-writer.ts';

// Chosen so that, on the benchmark's images, tens to a few hundred anchors pass 0.25 (measured).
const CLASS_GAIN = 10;
const CLASS_BIAS = -3.15;

export function buildYoloLike(opts: { imgsz?: number; numClasses?: number; seed?: number } = {}): { model: Uint8Array; parameters: number } {
  const s = opts.imgsz ?? 640;
  const nc = opts.numClasses ?? 80;
  const random = rng(opts.seed ?? 8);
  const g = new GraphBuilder();
  let n = 0;
  let parameters = 0;
  const weights = (dims: number[], fanIn: number, gain = 1) => {
    const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
    const bound = gain * Math.sqrt(6 / fanIn);
    for (let i = 0; i < data.length; i++) data[i] = (random() * 2 - 1) * bound;
    parameters += data.length;
    return g.weight(`w${n++}`, dims, data);
  };
  const conv = (x: string, cin: number, cout: number, k: number, stride: number, act = true, bias = 0, gain = 1) => {
    const b = g.weight(`b${n++}`, [cout], new Float32Array(cout).fill(bias));
    parameters += cout;
    const pad = Math.floor(k / 2);
    const y = g.node('Conv', [x, weights([cout, cin, k, k], cin * k * k, gain), b], {
      kernel_shape: { ints: [k, k] },
      strides: { ints: [stride, stride] },
      pads: { ints: [pad, pad, pad, pad] },
    });
    return act ? g.node('Mul', [y, g.node('Sigmoid', [y])]) : y;
  };
  const stage = (x: string, cin: number, cout: number, repeats: number) => {
    let y = conv(x, cin, cout, 3, 2);
    for (let i = 0; i < repeats; i++) y = conv(y, cout, cout, 3, 1);
    return y;
  };

  const input = g.input('images', ['batch', 3, s, s]);
  const c1 = conv(input, 3, 16, 3, 2);
  const c2 = stage(c1, 16, 32, 1);
  const p3 = stage(c2, 32, 64, 2);
  const p4 = stage(p3, 64, 128, 2);
  const p5 = stage(p4, 128, 256, 3);
  const scale = g.weight('input_scale', [1], new Float32Array([s]));
  const heads = [
    [p3, 64, s / 8],
    [p4, 128, s / 16],
    [p5, 256, s / 32],
  ] as const;
  const flat = heads.map(([p, cin, size]) => {
    const h = conv(p, cin, 64, 3, 1);
    // Boxes: sigmoid * input size, a plausible range; classes: mostly low.
    const box = g.node('Mul', [g.node('Sigmoid', [conv(h, 64, 4, 1, 1, false)]), scale]);
    const cls = g.node('Sigmoid', [conv(h, 64, nc, 1, 1, false, CLASS_BIAS, CLASS_GAIN)]);
    return g.node('Reshape', [g.node('Concat', [box, cls], { axis: { i: 1 } }), g.int64s(`shape${n++}`, [0, 4 + nc, size * size])]);
  });
  g.node('Concat', flat, { axis: { i: 2 } }, 'output0');
  const anchors = heads.reduce((a, [, , size]) => a + size * size, 0);
  g.output('output0', ['batch', 4 + nc, anchors]);
  const model = g.toModel({
    name: 'yolov8n-like',
    metadata: { task: 'detect', imgsz: `[${s}, ${s}]`, stride: '32', names: `{${Array.from({ length: nc }, (_, i) => `${i}: 'class_${i}'`).join(', ')}}` },
  });
  return { model, parameters };
}
