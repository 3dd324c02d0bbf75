// Models and datasets for comparing kinfer with Ultralytics' own `yolo val` and `yolo predict` on
// the same ONNX file. Laid out as Ultralytics exports them (static [1, 3, 640, 640] input,
// [1, 4 + nc (+ 32 | + K * 3), N] output, [1, 32, 160, 160] prototypes; names, imgsz, stride,
// task, kpt_shape in metadata_props), and sensitive to exactly what the comparison is about:
// - geometry: every candidate box is a fixed fraction of the image's content box in the
//   letterboxed input (the pixels that are not the 114 grey padding), so it moves with the
//   resize and the padding of each mode, and comes back through scale_boxes;
// - NMS: candidates overlap, several classes per candidate pass val's 0.001, more candidates than
//   max_det, boxes cross the image edges;
// - scores: frac(a * s + b)^3 of one number s taken from the image's colour, so that every image
//   has its own scores (the low ones below predict's 0.25);
// - masks: prototypes are the content map pooled to 1/4 (a box touching the image edge reads the
//   padding's cells) plus fixed fields, coefficients dyadic, so that the dot products are exact;
// - keypoints: fixed fractions of the content box, confidences fixed.
// The images are uniform colours, which any resize (cv2's, libvips') keeps uniform: both tools
// feed the network identical pixels, and every difference left is one of geometry or arithmetic.
// Only elementwise ops, Greater, ReduceMax and AveragePool of 0/1 values: exact in any ONNX Runtime.
import sharp from 'sharp';
import { rng } from '../../src/samples/images.ts';
import { GraphBuilder } from '../../src/samples/onnx-writer.ts';

export type FidelityKind = 'detect' | 'segment' | 'pose';

const S = 640;
const GREY = 114 / 255;

export interface FidelityDesign {
  kind: FidelityKind;
  nc: number;
  anchors: number;
  /** Per anchor: centre x, centre y, width, height as fractions of the content box. */
  boxes: Array<[number, number, number, number]>;
  /** Per anchor, per keypoint: x, y fractions of the content box and the confidence. */
  keypoints?: Array<Array<[number, number, number]>>;
}

export function fidelityDesign(kind: FidelityKind, seed = 1): FidelityDesign {
  const r = rng(seed);
  const nc = kind === 'pose' ? 1 : 5;
  const anchors = 80;
  // Clusters of candidates around a few places, some reaching past the content's edges.
  const centres = Array.from({ length: 12 }, () => [r(), r(), 0.08 + r() * 0.4, 0.08 + r() * 0.4] as const);
  const boxes = Array.from({ length: anchors }, (_, a) => {
    const [cx, cy, w, h] = centres[a % centres.length]!;
    const j = () => (r() - 0.5) * 0.05;
    return [cx + j(), cy + j(), w * (1 + j()), h * (1 + j())] as [number, number, number, number];
  });
  const keypoints =
    kind === 'pose'
      ? boxes.map(([cx, cy, w, h]) => Array.from({ length: 17 }, () => [cx + (r() - 0.5) * w, cy + (r() - 0.5) * h, r()] as [number, number, number]))
      : undefined;
  return { kind, nc, anchors, boxes, ...(keypoints ? { keypoints } : {}) };
}

export function buildFidelityModel(d: FidelityDesign, seed = 2): Uint8Array {
  const r = rng(seed);
  const g = new GraphBuilder();
  const x = g.input('images', [1, 3, S, S]);
  const w = (name: string, dims: number[], values: ArrayLike<number>) => g.weight(name, dims, Float32Array.from(values));
  const N = d.anchors;
  // Content map [1, 1, S, S]: 1 where some channel is off the padding's grey.
  const off = g.node('Cast', [g.node('Greater', [g.node('Abs', [g.node('Sub', [x, w('grey', [1], [GREY])])]), w('tol', [1], [0.02])])], { to: { i: 1 } });
  const content = g.node('ReduceMax', [off], { axes: { ints: [1] }, keepdims: { i: 1 } });
  // Its box: x1 = S - max((S - i) * col), x2 = max((i + 1) * col); likewise in y. [1, 1, 1] each.
  const cols = g.node('ReduceMax', [content], { axes: { ints: [2] }, keepdims: { i: 0 } }); // [1, 1, S]
  const rows = g.node('ReduceMax', [content], { axes: { ints: [3] }, keepdims: { i: 0 } });
  const up = w(
    'up',
    [S],
    Array.from({ length: S }, (_, i) => i + 1),
  );
  const down = w(
    'down',
    [S],
    Array.from({ length: S }, (_, i) => S - i),
  );
  const size = w('size', [1], [S]);
  const last = (t: string, k: string) => g.node('ReduceMax', [g.node('Mul', [t, k])], { axes: { ints: [2] }, keepdims: { i: 1 } });
  const x1 = g.node('Sub', [size, last(cols, down)]);
  const x2 = last(cols, up);
  const y1 = g.node('Sub', [size, last(rows, down)]);
  const y2 = last(rows, up);
  const bw = g.node('Sub', [x2, x1]);
  const bh = g.node('Sub', [y2, y1]);
  // The colour number s = r + 7 g + 13 b of the content ([1, 1, 1]).
  const colour = g.node('ReduceMax', [g.node('Mul', [x, content])], { axes: { ints: [2, 3] }, keepdims: { i: 0 } }); // [1, 3]
  const ch = (c: number) => g.node('Slice', [colour, g.int64s(`s${c}`, [c]), g.int64s(`e${c}`, [c + 1]), g.int64s(`a${c}`, [1])]);
  const sFlat = g.node('Add', [g.node('Add', [ch(0), g.node('Mul', [ch(1), w('k7', [1], [7])])]), g.node('Mul', [ch(2), w('k13', [1], [13])])]); // [1, 1]
  const s = g.node('Reshape', [sFlat, g.int64s('s_shape', [1, 1, 1])]);
  const row = (name: string, values: number[]) => w(name, [1, 1, N], values);
  const along = (origin: string, extent: string, f: string) => g.node('Add', [origin, g.node('Mul', [extent, f])]);
  const cx = along(
    x1,
    bw,
    row(
      'fcx',
      d.boxes.map((b) => b[0]),
    ),
  );
  const cy = along(
    y1,
    bh,
    row(
      'fcy',
      d.boxes.map((b) => b[1]),
    ),
  );
  const ww = g.node('Mul', [
    bw,
    row(
      'fw',
      d.boxes.map((b) => b[2]),
    ),
  ]);
  const hh = g.node('Mul', [
    bh,
    row(
      'fh',
      d.boxes.map((b) => b[3]),
    ),
  ]);
  // Scores [1, nc, N]: u^3, u = frac(a s + b).
  const a = w(
    'score_a',
    [1, d.nc, N],
    Array.from({ length: d.nc * N }, () => 3 + r() * 40),
  );
  const b = w(
    'score_b',
    [1, d.nc, N],
    Array.from({ length: d.nc * N }, () => r()),
  );
  const t = g.node('Add', [g.node('Mul', [s, a]), b]);
  const u = g.node('Sub', [t, g.node('Floor', [t])]);
  const scores = g.node('Mul', [g.node('Mul', [u, u]), u]);
  const parts = [cx, cy, ww, hh, scores];
  const outputs: Array<[string, number[]]> = [];
  const meta: Record<string, string> = {
    task: d.kind,
    names: `{${Array.from({ length: d.nc }, (_, i) => `${i}: 'c${i}'`).join(', ')}}`,
    imgsz: `[${S}, ${S}]`,
    stride: '32',
    batch: '1',
  };
  if (d.kind === 'segment') {
    // Prototypes [1, 32, 160, 160]: channel 0 = 20 * pooled content - 10, then fixed fields k/64.
    const pooled = g.node('AveragePool', [content], { kernel_shape: { ints: [4, 4] }, strides: { ints: [4, 4] } });
    const p0 = g.node('Sub', [g.node('Mul', [pooled, w('p_gain', [1], [20])]), w('p_bias', [1], [10])]);
    const m = S / 4;
    const fields = new Float32Array(31 * m * m);
    for (let k = 0; k < 31; k++) {
      const [fx, fy, px, py] = [0.02 + r() * 0.1, 0.02 + r() * 0.1, r() * 6, r() * 6];
      for (let yy = 0; yy < m; yy++)
        for (let xx = 0; xx < m; xx++) fields[(k * m + yy) * m + xx] = Math.round(Math.sin(xx * fx + px) * Math.cos(yy * fy + py) * 64) / 64;
    }
    const rest = g.node('Add', [g.node('Mul', [pooled, w('zero', [1], [0])]), w('fields', [1, 31, m, m], fields)]);
    g.node('Concat', [p0, rest], { axis: { i: 1 } }, 'output1');
    // Coefficients [1, 32, N]: 1/16 for channel 0 (+-0.625 inside and outside the content), j/16 with
    // |j| <= 6 for the fields: masks with ragged edges, some empty.
    const coef = new Float32Array(32 * N);
    for (let a2 = 0; a2 < N; a2++) {
      coef[a2] = 0.0625;
      for (let k = 1; k < 32; k++) coef[k * N + a2] = Math.round((r() - 0.5) * 12) / 16;
    }
    parts.push(g.node('Add', [g.node('Mul', [cx, w('zero_c', [1], [0])]), w('coefficients', [1, 32, N], coef)]));
    outputs.push(['output0', [1, 4 + d.nc + 32, N]], ['output1', [1, 32, m, m]]);
  } else if (d.kind === 'pose') {
    const kp = d.keypoints!;
    for (let k = 0; k < 17; k++) {
      parts.push(
        along(
          x1,
          bw,
          row(
            `kx${k}`,
            kp.map((p) => p[k]![0]),
          ),
        ),
      );
      parts.push(
        along(
          y1,
          bh,
          row(
            `ky${k}`,
            kp.map((p) => p[k]![1]),
          ),
        ),
      );
      parts.push(
        g.node('Add', [
          g.node('Mul', [cx, w(`kz${k}`, [1], [0])]),
          row(
            `kv${k}`,
            kp.map((p) => p[k]![2]),
          ),
        ]),
      );
    }
    meta.kpt_shape = '[17, 3]';
    outputs.push(['output0', [1, 4 + d.nc + 51, N]]);
  } else outputs.push(['output0', [1, 4 + d.nc, N]]);
  g.node('Concat', parts, { axis: { i: 1 } }, 'output0');
  for (const [name, dims] of outputs) g.output(name, dims);
  return g.toModel({ metadata: meta, name: `fidelity-${d.kind}` });
}

/** Image sizes with every kind of rounding: padding that rounds both ways, tiny, huge, thin, 640 exactly. */
export const FIDELITY_SIZES: Array<[number, number]> = [
  [640, 480],
  [335, 517],
  [517, 335],
  [1280, 720],
  [77, 33],
  [641, 427],
  [500, 333],
  [1000, 1000],
  [123, 457],
  [300, 12],
  [639, 641],
  [480, 640],
];

export interface FidelityFile {
  path: string;
  bytes: Uint8Array;
}

/**
 * A YOLO dataset (val/images/*.png, val/labels/*.txt, data.yaml for Ultralytics) of uniform
 * images, labels near the model's candidates (jittered, so that IoUs spread over 0.5..0.95),
 * with an image without labels and a label file for a missing class.
 */
export async function buildFidelityDataset(d: FidelityDesign, seed = 3): Promise<FidelityFile[]> {
  const r = rng(seed);
  const files: FidelityFile[] = [];
  const names = Array.from({ length: d.nc }, (_, i) => `c${i}`);
  for (const [i, [width, height]] of FIDELITY_SIZES.entries()) {
    // Far from the padding's grey in every channel.
    const channel = () => (r() < 0.5 ? Math.floor(r() * 60) : 170 + Math.floor(r() * 86));
    const png = await sharp({ create: { width, height, channels: 3, background: { r: channel(), g: channel(), b: channel() } } })
      .png()
      .toBuffer();
    const stem = String(i).padStart(3, '0');
    files.push({ path: `val/images/${stem}.png`, bytes: png });
    if (i === 3) continue; // no label file: a background image
    const lines: string[] = [];
    const n = 2 + Math.floor(r() * 5);
    for (let k = 0; k < n; k++) {
      const anchor = Math.floor(r() * d.anchors);
      const [cx, cy, w, h] = d.boxes[anchor]!;
      const j = () => (r() - 0.5) * 0.12;
      const x0 = Math.max(0.001, cx - (w * (1 + j())) / 2 + j() * w);
      const y0 = Math.max(0.001, cy - (h * (1 + j())) / 2 + j() * h);
      const x1 = Math.min(0.999, cx + (w * (1 + j())) / 2 + j() * w);
      const y1 = Math.min(0.999, cy + (h * (1 + j())) / 2 + j() * h);
      if (x1 - x0 < 0.01 || y1 - y0 < 0.01) continue;
      const cls = Math.floor(r() * d.nc);
      const f = (v: number) => v.toFixed(6);
      const box = [(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0].map(f);
      if (d.kind === 'detect') lines.push([cls, ...box].join(' '));
      else if (d.kind === 'segment') lines.push([cls, ...[x0, y0, x1, y0, x1, y1, x0, y1].map(f)].join(' '));
      else {
        // Near the model's keypoints of the same candidate, so that OKS spreads over 0.5..0.95.
        const kpts = d
          .keypoints![anchor]!.map(([kx, ky]) => {
            const v = r() < 0.15 ? 0 : r() < 0.3 ? 1 : 2;
            const clip = (t: number) => Math.min(Math.max(t, 0.001), 0.999);
            return v === 0 ? ['0', '0', '0'] : [f(clip(kx + (r() - 0.5) * 0.03 * w)), f(clip(ky + (r() - 0.5) * 0.03 * h)), String(v)];
          })
          .flat();
        lines.push([cls, ...box, ...kpts].join(' '));
      }
    }
    files.push({ path: `val/labels/${stem}.txt`, bytes: Buffer.from(lines.join('\n') + '\n') });
  }
  const yaml = [
    `train: val/images`,
    `val: val/images`,
    `names:`,
    ...names.map((n, i) => `  ${i}: ${n}`),
    ...(d.kind === 'pose' ? ['kpt_shape: [17, 3]', `flip_idx: [${Array.from({ length: 17 }, (_, i) => i).join(', ')}]`] : []),
  ];
  files.push({ path: 'data.yaml', bytes: Buffer.from(yaml.join('\n') + '\n') });
  return files;
}

/**
 * A classifier laid out as Ultralytics exports one (static [1, 3, 224, 224] in, softmax
 * probabilities [1, nc] out, task classify), whose scores depend on every 8 x 8 block of the
 * input: a resampling difference of one level in one pixel moves them.
 */
export function buildFidelityClassifier(opts: { nc?: number; size?: number; seed?: number; metadata?: Record<string, string> } = {}): Uint8Array {
  const nc = opts.nc ?? 10;
  const size = opts.size ?? 224;
  const r = rng(opts.seed ?? 4);
  const g = new GraphBuilder();
  const x = g.input('images', [1, 3, size, size]);
  const pooled = g.node('AveragePool', [x], { kernel_shape: { ints: [8, 8] }, strides: { ints: [8, 8] } });
  const features = 3 * (size / 8) * (size / 8);
  const flat = g.node('Flatten', [pooled]);
  const logits = g.node('Gemm', [
    flat,
    g.weight(
      'w',
      [features, nc],
      Float32Array.from({ length: features * nc }, () => (r() - 0.5) * 0.6),
    ),
    g.weight(
      'b',
      [nc],
      Float32Array.from({ length: nc }, () => r() - 0.5),
    ),
  ]);
  g.node('Softmax', [logits], { axis: { i: 1 } }, 'output0');
  g.output('output0', [1, nc]);
  return g.toModel({
    metadata: {
      task: 'classify',
      names: `{${Array.from({ length: nc }, (_, i) => `${i}: 'k${i}'`).join(', ')}}`,
      imgsz: `[${size}, ${size}]`,
      stride: '1',
      batch: '1',
      ...opts.metadata,
    },
    name: 'fidelity-classifier',
  });
}

/**
 * An ImageFolder dataset (train/ and val/, the same files: Ultralytics wants both) of noisy
 * gradients in many sizes, PNG and JPEG.
 */
export async function buildFidelityClassification(nc = 10, perClass = 4, seed = 5): Promise<FidelityFile[]> {
  const r = rng(seed);
  const files: FidelityFile[] = [];
  const sizes: Array<[number, number]> = [
    [500, 375],
    [224, 224],
    [97, 61],
    [333, 1000],
    [1000, 333],
    [225, 300],
    [640, 427],
    [150, 151],
  ];
  let n = 0;
  for (let c = 0; c < nc; c++) {
    for (let k = 0; k < perClass; k++, n++) {
      const [width, height] = sizes[n % sizes.length]!;
      const px = Buffer.alloc(width * height * 3);
      const f = [0.01 + r() * 0.2, 0.01 + r() * 0.2, 0.01 + r() * 0.2];
      const base = [r() * 255, r() * 255, r() * 255];
      for (let y = 0; y < height; y++)
        for (let x = 0; x < width; x++)
          for (let ch = 0; ch < 3; ch++)
            px[(y * width + x) * 3 + ch] = Math.max(
              0,
              Math.min(255, Math.round(base[ch]! * 0.5 + 60 * Math.sin(x * f[ch]! + y * f[(ch + 1) % 3]!) + (r() - 0.5) * 60 + 64)),
            );
      const image = sharp(px, { raw: { width, height, channels: 3 } });
      const jpeg = n % 2 === 1;
      const bytes = await (jpeg ? image.jpeg({ quality: 90 }) : image.png()).toBuffer();
      // Every class has images (ImageFolder numbers the folders it finds); the model ignores labels.
      const name = `k${n % nc}/img_${String(n).padStart(3, '0')}.${jpeg ? 'jpg' : 'png'}`;
      for (const split of ['train', 'val']) files.push({ path: `${split}/${name}`, bytes });
    }
  }
  return files;
}
