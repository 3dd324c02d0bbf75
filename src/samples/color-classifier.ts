// A tiny classifier whose answer is known without running it: it averages the image's normalized
// RGB and scores each class by closeness to that class's prototype colour,
//   logit_k = T * (2 m.c_k - |c_k|^2)  ==  -T * |m - c_k|^2 + const(m),
// so argmax = nearest prototype. Tests derive expected predictions from these formulas directly.
import { GraphBuilder } from './onnx-writer.ts';

export type Rgb = [number, number, number];

export const COLOR_CLASSES: ReadonlyArray<{ name: string; rgb: Rgb }> = [
  { name: 'red', rgb: [220, 30, 30] },
  { name: 'green', rgb: [30, 200, 40] },
  { name: 'blue', rgb: [30, 40, 210] },
  { name: 'yellow', rgb: [230, 220, 40] },
  { name: 'cyan', rgb: [40, 210, 220] },
  { name: 'magenta', rgb: [210, 40, 200] },
];

export const IMAGENET_MEAN: Rgb = [0.485, 0.456, 0.406];
export const IMAGENET_STD: Rgb = [0.229, 0.224, 0.225];
export const TEMPERATURE = 0.5;

/** Prototype of a colour in the space the network sees: (rgb/255 - mean) / std. */
export function normalizedColor(rgb: Rgb, mean: Rgb = IMAGENET_MEAN, std: Rgb = IMAGENET_STD): Rgb {
  return [0, 1, 2].map((c) => (rgb[c]! / 255 - mean[c]!) / std[c]!) as Rgb;
}

export interface ColorClassifierOptions {
  imgsz?: number;
  classes?: ReadonlyArray<{ name: string; rgb: Rgb }>;
  /** Where class names and preprocessing go: the model's metadata_props or a sidecar JSON. */
  metadataIn?: 'metadata_props' | 'sidecar';
}

export function buildColorClassifier(opts: ColorClassifierOptions = {}): { model: Uint8Array; sidecar: Record<string, unknown> | undefined } {
  const imgsz = opts.imgsz ?? 32;
  const classes = opts.classes ?? COLOR_CLASSES;
  const k = classes.length;
  const g = new GraphBuilder();
  const input = g.input('images', ['batch', 3, imgsz, imgsz]);
  const weights = new Float32Array(3 * k);
  const bias = new Float32Array(k);
  classes.forEach(({ rgb }, j) => {
    const c = normalizedColor(rgb);
    for (let i = 0; i < 3; i++) weights[i * k + j] = TEMPERATURE * 2 * c[i]!;
    bias[j] = -TEMPERATURE * (c[0] ** 2 + c[1] ** 2 + c[2] ** 2);
  });
  const pooled = g.node('GlobalAveragePool', [input]);
  const flat = g.node('Flatten', [pooled], { axis: { i: 1 } });
  const logits = g.node('Gemm', [flat, g.weight('prototypes', [3, k], weights), g.weight('bias', [k], bias)]);
  g.node('Softmax', [logits], { axis: { i: 1 } }, 'output0');
  g.output('output0', ['batch', k]);

  const names = `{${classes.map((c, i) => `${i}: '${c.name}'`).join(', ')}}`;
  const preprocessing = { mean: IMAGENET_MEAN, std: IMAGENET_STD };
  if (opts.metadataIn === 'sidecar') {
    return { model: g.toModel(), sidecar: { names: classes.map((c) => c.name), imgsz, task: 'classify', ...preprocessing } };
  }
  const metadata = {
    task: 'classify',
    names,
    imgsz: `[${imgsz}, ${imgsz}]`,
    stride: '1',
    batch: '1',
    'kinfer.mean': JSON.stringify(IMAGENET_MEAN),
    'kinfer.std': JSON.stringify(IMAGENET_STD),
  };
  return { model: g.toModel({ metadata, name: 'color-classifier' }), sidecar: undefined };
}
