// YOLOv8/YOLO11 detection outputs to boxes, as Ultralytics' non_max_suppression does:
// [1, 4+nc, N] rows of (cx, cy, w, h, per-class scores), no objectness; best class per box above
// `conf`; boxes offset by class * 7680 so that one NMS pass never suppresses across classes;
// torchvision's NMS (suppress IoU > iou); at most `maxDet`. End-to-end exports ([1, N, 6]:
// x1, y1, x2, y2, score, class) are already suppressed and only filtered.

export interface Detection {
  /** [x1, y1, x2, y2] in network input pixels. */
  box: [number, number, number, number];
  score: number;
  classId: number;
  /** The output column (anchor) or row it came from: where its mask coefficients or keypoints are. */
  anchor: number;
}

export interface NmsOptions {
  /** Ultralytics: 0.25 to predict, 0.001 to validate. */
  conf: number;
  /** Ultralytics: 0.7 (YOLOv8/11 default). */
  iou: number;
  /** Ultralytics: 300. */
  maxDet: number;
  /** Candidates kept for NMS, by score (Ultralytics max_nms). */
  maxNms?: number;
}

export const PREDICT_DEFAULTS: NmsOptions = { conf: 0.25, iou: 0.7, maxDet: 300 };
export const VAL_DEFAULTS: NmsOptions = { conf: 0.001, iou: 0.7, maxDet: 300 };

const MAX_WH = 7680;

function iou(a: number[], b: number[]): number {
  const w = Math.min(a[2]!, b[2]!) - Math.max(a[0]!, b[0]!);
  const h = Math.min(a[3]!, b[3]!) - Math.max(a[1]!, b[1]!);
  if (w <= 0 || h <= 0) return 0;
  const inter = w * h;
  return inter / ((a[2]! - a[0]!) * (a[3]! - a[1]!) + (b[2]! - b[0]!) * (b[3]! - b[1]!) - inter);
}

/** Greedy NMS over score-sorted candidates; returns kept indices, best first. */
export function nms(boxes: number[][], scores: number[], iouThreshold: number): number[] {
  const order = scores
    .map((s, i) => [s, i] as const)
    .sort((a, b) => b[0] - a[0] || a[1] - b[1])
    .map(([, i]) => i);
  const keep: number[] = [];
  const suppressed = new Uint8Array(boxes.length);
  for (const i of order) {
    if (suppressed[i]) continue;
    keep.push(i);
    for (const j of order) if (!suppressed[j] && j !== i && iou(boxes[i]!, boxes[j]!) > iouThreshold) suppressed[j] = 1;
  }
  return keep;
}

/** Decodes one image's [4+nc, N] output (channel-major, as exported) and applies class-aware NMS. */
export function decodeYolo(output: Float32Array, numClasses: number, numAnchors: number, opts: NmsOptions): Detection[] {
  // Class-major walk (each class row read in order): the anchor-major one strides 4*N bytes a read.
  const best = new Float32Array(numAnchors).fill(-Infinity);
  const bestClass = new Uint16Array(numAnchors);
  for (let c = 0; c < numClasses; c++) {
    const row = output.subarray((4 + c) * numAnchors, (5 + c) * numAnchors);
    for (let a = 0; a < numAnchors; a++) {
      if (row[a]! > best[a]!) {
        best[a] = row[a]!;
        bestClass[a] = c;
      }
    }
  }
  const candidates: Detection[] = [];
  for (let a = 0; a < numAnchors; a++) {
    if (!(best[a]! > opts.conf)) continue;
    const cx = output[a]!;
    const cy = output[numAnchors + a]!;
    const w = output[2 * numAnchors + a]!;
    const h = output[3 * numAnchors + a]!;
    candidates.push({ box: [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], score: best[a]!, classId: bestClass[a]!, anchor: a });
  }
  const maxNms = opts.maxNms ?? 30_000;
  const pool = candidates.length > maxNms ? [...candidates].sort((a, b) => b.score - a.score).slice(0, maxNms) : candidates;
  const offset = pool.map((d) => d.box.map((v) => v + d.classId * MAX_WH));
  return nms(
    offset,
    pool.map((d) => d.score),
    opts.iou,
  )
    .slice(0, opts.maxDet)
    .map((i) => pool[i]!);
}

/** End-to-end exports: rows of (x1, y1, x2, y2, score, class), already suppressed. */
export function decodeEndToEnd(output: Float32Array, rows: number, opts: Pick<NmsOptions, 'conf' | 'maxDet'>): Detection[] {
  const out: Detection[] = [];
  for (let r = 0; r < rows && out.length < opts.maxDet; r++) {
    const o = r * 6;
    const score = output[o + 4]!;
    if (!(score > opts.conf)) continue;
    out.push({ box: [output[o]!, output[o + 1]!, output[o + 2]!, output[o + 3]!], score, classId: Math.round(output[o + 5]!), anchor: r });
  }
  return out;
}
