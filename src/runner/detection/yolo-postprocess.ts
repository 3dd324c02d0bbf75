// YOLOv8/YOLO11 detection outputs to boxes, as Ultralytics 8.4's non_max_suppression
// (ultralytics/utils/nms.py) with torchvision's CPU NMS kernel decide them, in their float32:
//   - [1, 4+nc(+extra), N] rows of (cx, cy, w, h, per-class scores), no objectness;
//   - candidates: best class score > conf, compared in float32 (torch casts the Python float);
//     none where a class score is NaN (torch's amax is NaN then);
//   - multi-label (val): one row per class above conf, anchor-major; best class only (predict);
//   - boxes offset by class * 7680 in float32, so that one NMS pass never suppresses across
//     classes (at high class ids the offset costs precision: that is what Ultralytics computes);
//   - torchvision nms: stable sort by score, IoU in float32, suppress when IoU > iou (double);
//   - at most max_det.
// End-to-end exports ([1, N, 6]: x1, y1, x2, y2, score, class) are only filtered.

export interface Detection {
  /** [x1, y1, x2, y2] in network input pixels (float32 values). */
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
  /** Every class above conf per anchor (Ultralytics val), or the best class only (predict). */
  multiLabel?: boolean;
  /** Candidates kept for NMS, by score (Ultralytics max_nms). */
  maxNms?: number;
}

export const PREDICT_DEFAULTS: NmsOptions = { conf: 0.25, iou: 0.7, maxDet: 300, multiLabel: false };
export const VAL_DEFAULTS: NmsOptions = { conf: 0.001, iou: 0.7, maxDet: 300, multiLabel: true };

const MAX_WH = 7680;
const f32 = Math.fround;

/**
 * torchvision.ops.nms (CPU kernel): kept indices, best first. `boxes` holds x1, y1, x2, y2 per box
 * (float32 values); areas and IoU are computed in float32, the threshold compared as a double.
 * Pairs that do not overlap, or whose IoU is clearly on one side of the threshold, are decided
 * in double precision first: float32 rounding moves an IoU by far less than the margin. Stops at
 * `limit` kept: a box is kept or not by the boxes kept before it alone, so the first `limit` are
 * those of the whole pass (max_det: torchvision decides every box, Ultralytics keeps the first).
 */
export function nms(boxes: Float32Array, scores: ArrayLike<number>, iouThreshold: number, limit = Infinity): number[] {
  const n = scores.length;
  // A stable sort, descending: equal scores keep their input order.
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[b]! - scores[a]! || a - b);
  const areas = new Float32Array(n);
  for (let i = 0; i < n; i++) areas[i] = f32(f32(boxes[4 * i + 2]! - boxes[4 * i]!) * f32(boxes[4 * i + 3]! - boxes[4 * i + 1]!));
  const suppressed = new Uint8Array(n);
  const keep: number[] = [];
  for (let oi = 0; oi < n; oi++) {
    const i = order[oi]!;
    if (suppressed[i]) continue;
    keep.push(i);
    if (keep.length >= limit) break;
    const ix1 = boxes[4 * i]!;
    const iy1 = boxes[4 * i + 1]!;
    const ix2 = boxes[4 * i + 2]!;
    const iy2 = boxes[4 * i + 3]!;
    const iarea = areas[i]!;
    for (let oj = oi + 1; oj < n; oj++) {
      const j = order[oj]!;
      if (suppressed[j]) continue;
      const jx1 = boxes[4 * j]!;
      const jy1 = boxes[4 * j + 1]!;
      const jx2 = boxes[4 * j + 2]!;
      const jy2 = boxes[4 * j + 3]!;
      // Differences of float32 values are exact in double: the sign decides as float32 would.
      const w = (ix2 < jx2 ? ix2 : jx2) - (ix1 > jx1 ? ix1 : jx1);
      if (w <= 0) continue;
      const h = (iy2 < jy2 ? iy2 : jy2) - (iy1 > jy1 ? iy1 : jy1);
      if (h <= 0) continue;
      const approx = (w * h) / (iarea + areas[j]! - w * h);
      if (approx < iouThreshold - 1e-5) continue;
      if (approx > iouThreshold + 1e-5) {
        suppressed[j] = 1;
        continue;
      }
      const inter = f32(f32(w) * f32(h));
      if (f32(inter / f32(f32(iarea + areas[j]!) - inter)) > iouThreshold) suppressed[j] = 1;
    }
  }
  return keep;
}

/** Decodes one image's [4+nc(+extra), N] output (channel-major, as exported) and applies class-aware NMS. */
export function decodeYolo(output: Float32Array, numClasses: number, numAnchors: number, opts: NmsOptions): Detection[] {
  const conf = f32(opts.conf);
  const candidate = anchorsAbove(output, numClasses, numAnchors, conf);
  const multiLabel = (opts.multiLabel ?? false) && numClasses > 1;
  // Ultralytics' rows, anchor-major (and class-major within an anchor): kept as numbers, not
  // objects, as a val run (conf 0.001, every class) can have hundreds of thousands of them.
  let candidates = 0;
  for (let a = 0; a < numAnchors; a++) candidates += candidate[a]!;
  const capacity = multiLabel ? candidates * numClasses : candidates;
  const rowAnchor = new Int32Array(capacity);
  const rowClass = new Int32Array(capacity);
  const rowScore = new Float32Array(capacity);
  let count = 0;
  // A NaN class score makes torch's amax over the classes NaN, and NaN > conf is false: Ultralytics
  // drops such an anchor, whatever its other scores (as the session's candidate columns do).
  for (let a = 0; a < numAnchors; a++) {
    if (candidate[a] === 0) continue;
    if (multiLabel) {
      const first = count;
      for (let c = 0; c < numClasses; c++) {
        const score = output[(4 + c) * numAnchors + a]!;
        if (score > conf) {
          rowAnchor[count] = a;
          rowClass[count] = c;
          rowScore[count++] = score;
        } else if (Number.isNaN(score)) {
          count = first;
          break;
        }
      }
      continue;
    }
    // The best class, the first of equal ones (torch's max over the class dimension).
    let score = -Infinity;
    let classId = 0;
    for (let c = 0; c < numClasses; c++) {
      const s = output[(4 + c) * numAnchors + a]!;
      if (s > score) {
        score = s;
        classId = c;
      } else if (Number.isNaN(s)) {
        score = NaN;
        break;
      }
    }
    if (Number.isNaN(score)) continue;
    rowAnchor[count] = a;
    rowClass[count] = classId;
    rowScore[count++] = score;
  }
  const pool = maxNmsRows(rowScore.subarray(0, count), opts.maxNms ?? 30_000);
  // Each pool row's box (xywh2xyxy in float32, as Ultralytics computes it), and the same box
  // shifted by its class for NMS; a Float32Array stores each value rounded to float32.
  const corners = new Float32Array(pool.length * 4);
  const shifted = new Float32Array(pool.length * 4);
  const poolScores = new Float32Array(pool.length);
  pool.forEach((row, i) => {
    const a = rowAnchor[row]!;
    const cx = output[a]!;
    const cy = output[numAnchors + a]!;
    const hw = f32(output[2 * numAnchors + a]! / 2);
    const hh = f32(output[3 * numAnchors + a]! / 2);
    corners[4 * i] = cx - hw;
    corners[4 * i + 1] = cy - hh;
    corners[4 * i + 2] = cx + hw;
    corners[4 * i + 3] = cy + hh;
    const shift = f32(rowClass[row]! * MAX_WH);
    for (let k = 4 * i; k < 4 * i + 4; k++) shifted[k] = corners[k]! + shift;
    poolScores[i] = rowScore[row]!;
  });
  return nms(shifted, poolScores, opts.iou, opts.maxDet).map((i) => {
    const row = pool[i]!;
    const box = Array.from(corners.subarray(4 * i, 4 * i + 4)) as Detection['box'];
    return { box, score: rowScore[row]!, classId: rowClass[row]!, anchor: rowAnchor[row]! };
  });
}

/**
 * 1 for each anchor with any class score above `conf`: exactly the anchors whose best score is.
 * Read class-major (each class row in order: the anchor-major walk strides 4*N bytes a read), with
 * comparisons that a trained head, its scores mostly near 0, rarely passes, instead of keeping
 * every anchor's running best (0.55 vs 0.95 ms a decode of 80 x 8,400). Eight class rows a pass,
 * one branch an anchor for eight scores, then took a decode from 1.35 to 0.60 ms (a slower day).
 */
function anchorsAbove(output: Float32Array, numClasses: number, n: number, conf: number): Uint8Array {
  const candidate = new Uint8Array(n);
  let c = 0;
  for (; c + 8 <= numClasses; c += 8) {
    const first = (4 + c) * n;
    for (let i = first; i < first + n; i++) {
      if (
        output[i]! > conf ||
        output[i + n]! > conf ||
        output[i + 2 * n]! > conf ||
        output[i + 3 * n]! > conf ||
        output[i + 4 * n]! > conf ||
        output[i + 5 * n]! > conf ||
        output[i + 6 * n]! > conf ||
        output[i + 7 * n]! > conf
      )
        candidate[i - first] = 1;
    }
  }
  for (; c < numClasses; c++) {
    const row = output.subarray((4 + c) * n, (5 + c) * n);
    for (let a = 0; a < n; a++) if (row[a]! > conf) candidate[a] = 1;
  }
  return candidate;
}

/**
 * The rows that go to NMS, in row order: all of them, or the `maxNms` best scores (Ultralytics'
 * max_nms), of equal scores at the cut the first rows (where Ultralytics' unstable argsort takes
 * torch's order). NMS then orders them by score, rows in order among equal ones, as a stable sort
 * of every row would have: the cut is selected among the scores alone, not every row sorted as
 * an object (the YOLO-like model's 672,000 rows at conf 0.001: 405 -> 40-60 ms a decode).
 */
function maxNmsRows(scores: Float32Array, maxNms: number): Int32Array {
  const n = scores.length;
  if (n <= maxNms) return Int32Array.from({ length: n }, (_, i) => i);
  const cut = kthSmallest(Float32Array.from(scores), n - maxNms);
  let atCut = maxNms;
  for (let i = 0; i < n; i++) if (scores[i]! > cut) atCut--;
  const rows = new Int32Array(maxNms);
  let k = 0;
  for (let i = 0; i < n; i++) {
    const s = scores[i]!;
    if (s > cut || (s === cut && atCut-- > 0)) rows[k++] = i;
  }
  return rows;
}

/** The k-th smallest value (0-based) of `v`, which it reorders: Hoare's selection, O(n) on average. */
function kthSmallest(v: Float32Array, k: number): number {
  let lo = 0;
  let hi = v.length - 1;
  while (lo < hi) {
    const pivot = v[(lo + hi) >>> 1]!;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (v[i]! < pivot) i++;
      while (v[j]! > pivot) j--;
      if (i <= j) {
        const t = v[i]!;
        v[i++] = v[j]!;
        v[j--] = t;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return v[k]!;
  }
  return v[k]!;
}

/** End-to-end exports: rows of (x1, y1, x2, y2, score, class), already suppressed. */
export function decodeEndToEnd(output: Float32Array, rows: number, opts: Pick<NmsOptions, 'conf' | 'maxDet'>): Detection[] {
  const conf = f32(opts.conf);
  const out: Detection[] = [];
  for (let r = 0; r < rows && out.length < opts.maxDet; r++) {
    const o = r * 6;
    const score = output[o + 4]!;
    if (!(score > conf)) continue;
    out.push({ box: [output[o]!, output[o + 1]!, output[o + 2]!, output[o + 3]!], score, classId: Math.round(output[o + 5]!), anchor: r });
  }
  return out;
}
