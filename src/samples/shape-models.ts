// Small ONNX models that find coloured rectangles, in the output layouts of real vision models,
// so that tests know every right answer without running them: a pixel belongs to colour class c
// when its channel c exceeds both others by more than 0.4 (on [0,1] values); a class's object is
// the bounding box of its pixels (one object per class per image).
//   detector:  YOLOv8 detect  [B, 4 + nc, nc]        (anchor a = class a's box, score CONFIDENCE[a]);
//              end-to-end variant [B, nc, 6] (x1, y1, x2, y2, score, class)
//   segmenter: YOLOv8 segment [B, 4 + nc + 32, nc] + prototypes [B, 32, S/4, S/4] (prototype a =
//              class a's pixels averaged per 4x4 cell, logit +-10; coefficients one-hot)
//   pose:      YOLOv8 pose    [B, 4 + 1 + 17*3, 1]   (keypoint k at POSE_TEMPLATE[k] inside the box)
//   semantic:  [B, 1 + nc, S, S] logits (background 0.2, class c: its channel's margin)
import { GraphBuilder } from './onnx-writer.ts';

export const SHAPE_CLASSES = [
  { name: 'red', rgb: [230, 30, 30] },
  { name: 'green', rgb: [30, 220, 30] },
  { name: 'blue', rgb: [30, 30, 230] },
] as const satisfies ReadonlyArray<{ name: string; rgb: [number, number, number] }>;

/** The detector's confidence for each class. */
export const CONFIDENCE = [0.9, 0.8, 0.7];
export const MARGIN = 0.4;
/** Pose: keypoint k at (x1 + fx * w, y1 + fy * h) of the box. */
export const POSE_TEMPLATE: Array<[number, number]> = Array.from({ length: 17 }, (_, k) => [0.1 + (0.8 * ((k * 7) % 17)) / 16, 0.1 + (0.8 * k) / 16]);
export const KEYPOINT_SCORE = 0.9;

export type ShapeModelKind = 'detect' | 'detect-e2e' | 'segment' | 'pose' | 'semantic';

const names = (list: string[]) => `{${list.map((n, i) => `${i}: '${n}'`).join(', ')}}`;

/** Per colour class c < `classes`, [B, 1, S, S]: channel c minus the larger of the other two. */
function colourMargins(g: GraphBuilder, x: string, classes: number): string[] {
  const ch = [0, 1, 2].map((c) => g.node('Slice', [x, g.int64s(`c${c}_start`, [c]), g.int64s(`c${c}_end`, [c + 1]), g.int64s(`c${c}_axis`, [1])]));
  return Array.from({ length: classes }, (_, c) =>
    g.node('Sub', [
      ch[c]!,
      g.node(
        'Max',
        [0, 1, 2].filter((o) => o !== c).map((o) => ch[o]!),
      ),
    ]),
  );
}

/** Per-class binary maps [B, nc, S, S] and their per-class boxes [B, 1, nc] (x1, y1, x2, y2, present). */
function classPixels(g: GraphBuilder, x: string, s: number, classes: number) {
  const maps = colourMargins(g, x, classes).map((margin, c) =>
    g.node('Cast', [g.node('Greater', [margin, g.weight(`margin_${c}`, [1], new Float32Array([MARGIN]))])], { to: { i: 1 } }),
  );
  const m = classes === 1 ? maps[0]! : g.node('Concat', maps, { axis: { i: 1 } }); // [B, nc, S, S]
  const cols = g.node('ReduceMax', [m], { axes: { ints: [2] }, keepdims: { i: 0 } }); // [B, nc, S]
  const rows = g.node('ReduceMax', [m], { axes: { ints: [3] }, keepdims: { i: 0 } });
  const up = g.weight(
    'idx_plus_1',
    [s],
    Float32Array.from({ length: s }, (_, i) => i + 1),
  );
  const down = g.weight(
    's_minus_idx',
    [s],
    Float32Array.from({ length: s }, (_, i) => s - i),
  );
  const size = g.weight('size', [1], new Float32Array([s]));
  const last = (t: string, w: string) => g.node('ReduceMax', [g.node('Mul', [t, w])], { axes: { ints: [2] }, keepdims: { i: 1 } }); // [B, nc, 1]
  const x1 = g.node('Sub', [size, last(cols, down)]);
  const x2 = last(cols, up);
  const y1 = g.node('Sub', [size, last(rows, down)]);
  const y2 = last(rows, up);
  const present = g.node('ReduceMax', [cols], { axes: { ints: [2] }, keepdims: { i: 1 } });
  const t = (v: string) => g.node('Transpose', [v], { perm: { ints: [0, 2, 1] } }); // [B, 1, nc]
  return { maps: m, x1: t(x1), y1: t(y1), x2: t(x2), y2: t(y2), present: t(present) };
}

function boxRows(g: GraphBuilder, b: ReturnType<typeof classPixels>): string {
  const half = g.weight('half', [1], new Float32Array([0.5]));
  const cx = g.node('Mul', [g.node('Add', [b.x1, b.x2]), half]);
  const cy = g.node('Mul', [g.node('Add', [b.y1, b.y2]), half]);
  const w = g.node('Sub', [b.x2, b.x1]);
  const h = g.node('Sub', [b.y2, b.y1]);
  return g.node('Concat', [cx, cy, w, h], { axis: { i: 1 } }); // [B, 4, nc]
}

export function buildShapeModel(kind: ShapeModelKind, opts: { imgsz?: number } = {}): Uint8Array {
  const s = opts.imgsz ?? 64;
  const g = new GraphBuilder();
  const x = g.input('images', ['batch', 3, s, s]);
  const classNames = kind === 'pose' ? ['person'] : SHAPE_CLASSES.map((c) => c.name);
  const nc = classNames.length;
  const meta = (task: string, extra: Record<string, string> = {}) => ({
    task,
    names: names(kind === 'semantic' ? ['background', ...classNames] : classNames),
    imgsz: `[${s}, ${s}]`,
    stride: '32',
    batch: '1',
    ...extra,
  });

  if (kind === 'semantic') {
    const margins = colourMargins(g, x, 3);
    const background = g.node('Add', [
      g.node('Mul', [margins[0]!, g.weight('zero', [1], new Float32Array([0]))]),
      g.weight('bg', [1], new Float32Array([MARGIN / 2])),
    ]);
    g.node('Concat', [background, ...margins], { axis: { i: 1 } }, 'output0');
    g.output('output0', ['batch', nc + 1, s, s]);
    return g.toModel({ metadata: meta('semantic_segmentation'), name: 'shape-semantic' });
  }

  const b = classPixels(g, x, s, nc);
  const boxes = boxRows(g, b);
  const diag = new Float32Array(nc * nc);
  for (let c = 0; c < nc; c++) diag[c * nc + c] = CONFIDENCE[c]!;
  const scores = g.node('Mul', [b.present, g.weight('confidence', [nc, nc], diag)]); // [B, nc, nc]
  const ones = g.node('Add', [g.node('Mul', [b.present, g.weight('zero', [1], new Float32Array([0]))]), g.weight('one', [1], new Float32Array([1]))]); // [B, 1, nc]

  if (kind === 'detect-e2e') {
    // End-to-end export (NMS inside): [B, N, 6] rows of x1, y1, x2, y2, score, class.
    const score = g.node('Mul', [b.present, g.weight('class_confidence', [1, 1, nc], Float32Array.from(CONFIDENCE.slice(0, nc)))]);
    const cls = g.node('Mul', [
      ones,
      g.weight(
        'class_ids',
        [1, 1, nc],
        Float32Array.from({ length: nc }, (_, c) => c),
      ),
    ]);
    const rows = g.node('Concat', [b.x1, b.y1, b.x2, b.y2, score, cls], { axis: { i: 1 } }); // [B, 6, nc]
    g.node('Transpose', [rows], { perm: { ints: [0, 2, 1] } }, 'output0');
    g.output('output0', ['batch', nc, 6]);
    return g.toModel({ metadata: meta('detect'), name: 'shape-detector-e2e' });
  }

  if (kind === 'detect') {
    g.node('Concat', [boxes, scores], { axis: { i: 1 } }, 'output0');
    g.output('output0', ['batch', 4 + nc, nc]);
    return g.toModel({ metadata: meta('detect'), name: 'shape-detector' });
  }

  if (kind === 'segment') {
    const pooled = g.node('AveragePool', [b.maps], { kernel_shape: { ints: [4, 4] }, strides: { ints: [4, 4] } });
    const logits = g.node('Mul', [g.node('Sub', [pooled, g.weight('p_half', [1], new Float32Array([0.5]))]), g.weight('p_gain', [1], new Float32Array([20]))]);
    const w = new Float32Array(32 * nc);
    for (let c = 0; c < nc; c++) w[c * nc + c] = 1;
    g.node('Conv', [logits, g.weight('proto_w', [32, nc, 1, 1], w)], {}, 'output1');
    const coef = new Float32Array(32 * nc);
    for (let c = 0; c < nc; c++) coef[c * nc + c] = 1;
    const coefficients = g.node('Mul', [ones, g.weight('coefficients', [32, nc], coef)]); // [B, 32, nc]
    g.node('Concat', [boxes, scores, coefficients], { axis: { i: 1 } }, 'output0');
    g.output('output0', ['batch', 4 + nc + 32, nc]);
    g.output('output1', ['batch', 32, s / 4, s / 4]);
    return g.toModel({ metadata: meta('segment'), name: 'shape-segmenter' });
  }

  // pose: one class; keypoints from the box.
  const fx = g.weight(
    'fx',
    [1, 17, 1],
    Float32Array.from(POSE_TEMPLATE, ([f]) => f),
  );
  const fy = g.weight(
    'fy',
    [1, 17, 1],
    Float32Array.from(POSE_TEMPLATE, ([, f]) => f),
  );
  const bw = g.node('Sub', [b.x2, b.x1]);
  const bh = g.node('Sub', [b.y2, b.y1]);
  const kx = g.node('Add', [b.x1, g.node('Mul', [bw, fx])]); // [B, 17, 1]
  const ky = g.node('Add', [b.y1, g.node('Mul', [bh, fy])]);
  const kv = g.node('Mul', [
    g.node('Mul', [ones, g.weight('kpt_ones', [1, 17, 1], new Float32Array(17).fill(1))]),
    g.weight('kpt_score', [1], new Float32Array([KEYPOINT_SCORE])),
  ]);
  const axis2 = g.int64s('axis2', [2]);
  const stacked = g.node(
    'Concat',
    [kx, ky, kv].map((t) => g.node('Unsqueeze', [t, axis2])),
    { axis: { i: 2 } },
  ); // [B, 17, 3, 1]
  const keypoints = g.node('Reshape', [stacked, g.int64s('kpt_shape', [0, 51, 1])]);
  g.node('Concat', [boxes, scores, keypoints], { axis: { i: 1 } }, 'output0');
  g.output('output0', ['batch', 4 + nc + 51, nc]);
  return g.toModel({ metadata: meta('pose', { kpt_shape: '[17, 3]' }), name: 'shape-pose' });
}
