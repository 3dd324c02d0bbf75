// Ultralytics' own detection metrics, as `yolo val` computes them (Ultralytics 8.4,
// ultralytics/utils/metrics.py and engine/validator.py), beside pycocotools' COCO metrics: in the
// network's input space (labels letterboxed, predictions as NMS left them), each prediction
// matched greedily to the best unclaimed label of its class at ten IoU thresholds
// (match_predictions), then per class the precision-recall curve, AP by 101-point interpolation
// and trapezoid integration (compute_ap), precision and recall at the confidence where the smoothed
// mean F1 peaks (ap_per_class), fitness = mAP50-95. Boxes (B) by box IoU, pose (P) by OKS with
// area = 0.53 x box area. Float32 where Ultralytics' tensors are float32; the curves in float64 as
// numpy does. One difference: detections of equal confidence are ranked stably, where numpy's
// quicksort leaves their order unspecified.

const f32 = Math.fround;
/** torch.linspace(0.5, 0.95, 10) in float32, as its CPU kernel computes it (from both ends). */
const IOU_THRESHOLDS = (() => {
  const step = f32(f32(f32(0.95) - 0.5) / 9);
  return Float32Array.from({ length: 10 }, (_, i) => (i < 5 ? f32(0.5 + f32(step * i)) : f32(f32(0.95) - f32(step * (9 - i)))));
})();

/** Ultralytics' OKS sigmas in float32: COCO's (np.float32 values / 10) for 17 keypoints, else 1/K. */
export function ultralyticsSigmas(k: number): number[] {
  const coco = [0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89];
  return k === 17 ? coco.map((v) => f32(f32(v) / 10)) : new Array<number>(k).fill(f32(1 / k));
}
const EPS_IOU = f32(1e-7);
const AP_X = Float64Array.from({ length: 101 }, (_, i) => i * (1 / 100));
const CURVE_X = Float64Array.from({ length: 1000 }, (_, i) => (i === 999 ? 1 : i * (1 / 999)));

/** np.interp: `xp` ascending (ties allowed), the last of equal xp wins, `left`/`right` outside. */
export function interp(x: number, xp: ArrayLike<number>, fp: ArrayLike<number>, left = fp[0]!, right = fp[fp.length - 1]!): number {
  const n = xp.length;
  if (x < xp[0]!) return left;
  if (x > xp[n - 1]!) return right;
  // The last j with xp[j] <= x.
  let lo = 0;
  let hi = n;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (xp[mid]! <= x) lo = mid;
    else hi = mid;
  }
  const j = lo;
  if (j === n - 1 || xp[j] === x) return fp[j]!;
  const slope = (fp[j + 1]! - fp[j]!) / (xp[j + 1]! - xp[j]!);
  let res = slope * (x - xp[j]!) + fp[j]!;
  if (Number.isNaN(res)) {
    res = slope * (x - xp[j + 1]!) + fp[j + 1]!;
    if (Number.isNaN(res) && fp[j] === fp[j + 1]) res = fp[j]!;
  }
  return res;
}

/**
 * np.sum of float64 values: numpy's pairwise summation (8 accumulators up to 128 values, halves
 * beyond), so that means of many classes round as numpy's do.
 */
export function npSum(a: ArrayLike<number>, start = 0, n = a.length): number {
  if (n < 8) {
    let r = 0;
    for (let i = 0; i < n; i++) r += a[start + i]!;
    return r;
  }
  if (n <= 128) {
    const r = [0, 1, 2, 3, 4, 5, 6, 7].map((j) => a[start + j]!);
    let i = 8;
    for (; i < n - (n % 8); i += 8) for (let j = 0; j < 8; j++) r[j]! += a[start + i + j]!;
    let res = r[0]! + r[1]! + (r[2]! + r[3]!) + (r[4]! + r[5]! + (r[6]! + r[7]!));
    for (; i < n; i++) res += a[start + i]!;
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return npSum(a, start, n2) + npSum(a, start + n2, n - n2);
}

/** np.mean: npSum / n (0 for no values, where numpy says nan and Ultralytics' nan_to_num 0). */
const npMean = (a: ArrayLike<number>) => (a.length ? npSum(a) / a.length : 0);

/** np.trapezoid(y, x): (diff(x) * (y[1:] + y[:-1]) / 2).sum(). */
function trapezoid(y: ArrayLike<number>, x: ArrayLike<number>): number {
  const terms = Float64Array.from({ length: y.length - 1 }, (_, k) => ((x[k + 1]! - x[k]!) * (y[k + 1]! + y[k]!)) / 2);
  return npSum(terms);
}

/** compute_ap: AP of one precision-recall curve (101-point interpolation, trapezoid). */
export function computeAp(recall: ArrayLike<number>, precision: ArrayLike<number>): number {
  const n = recall.length;
  const mrec = new Float64Array(n + 3);
  const mpre = new Float64Array(n + 3);
  mrec[0] = 0;
  mpre[0] = 1;
  for (let i = 0; i < n; i++) {
    mrec[i + 1] = recall[i]!;
    mpre[i + 1] = precision[i]!;
  }
  mrec[n + 1] = n ? recall[n - 1]! : 1;
  mrec[n + 2] = 1;
  mpre[n + 1] = 0;
  mpre[n + 2] = 0;
  for (let i = n + 1; i >= 0; i--) mpre[i] = Math.max(mpre[i]!, mpre[i + 1]!);
  const y = Float64Array.from(AP_X, (x) => interp(x, mrec, mpre));
  return trapezoid(y, AP_X);
}

/** smooth(y, f): box filter of width ~2f|y|, ends padded with the end values (np.convolve 'valid'). */
function smooth(y: Float64Array, f: number): Float64Array {
  const nf = Math.floor(Math.round(y.length * f * 2) / 2) + 1;
  const half = Math.floor(nf / 2);
  const padded = new Float64Array(y.length + 2 * half);
  padded.fill(y[0]!, 0, half);
  padded.set(y, half);
  padded.fill(y[y.length - 1]!, half + y.length);
  const k = 1 / nf;
  const out = new Float64Array(y.length);
  for (let i = 0; i < y.length; i++) {
    let s = 0;
    for (let j = 0; j < nf; j++) s += padded[i + j]! * k;
    out[i] = s;
  }
  return out;
}

export interface ApPerClass {
  /** Classes with labels, ascending (ap_class_index). */
  classes: number[];
  precision: number[];
  recall: number[];
  f1: number[];
  /** [class][threshold]: AP at IoU 0.50, 0.55, ..., 0.95. */
  ap: number[][];
}

/**
 * ap_per_class. `tp`: per detection a 10-bit mask of thresholds at which it is a true positive;
 * `conf`, `predClass` per detection; `targetClass` per label.
 */
export function apPerClass(tp: Uint16Array, conf: Float32Array, predClass: Int32Array, targetClass: Int32Array): ApPerClass {
  const order = Array.from(conf.keys()).sort((a, b) => conf[b]! - conf[a]! || a - b);
  const counts = new Map<number, number>();
  for (const c of targetClass) counts.set(c, (counts.get(c) ?? 0) + 1);
  const classes = [...counts.keys()].sort((a, b) => a - b);
  const nc = classes.length;
  const ap = classes.map(() => new Array<number>(10).fill(0));
  const pCurve = classes.map(() => new Float64Array(1000));
  const rCurve = classes.map(() => new Float64Array(1000));
  const byClass = new Map<number, number[]>();
  for (const i of order) {
    const list = byClass.get(predClass[i]!);
    if (list) list.push(i);
    else byClass.set(predClass[i]!, [i]);
  }
  classes.forEach((c, ci) => {
    const nl = counts.get(c)!;
    const dets = byClass.get(c) ?? [];
    if (dets.length === 0 || nl === 0) return;
    const negConf = Float64Array.from(dets, (i) => -conf[i]!);
    const recall = Array.from({ length: 10 }, () => new Float64Array(dets.length));
    const precision = Array.from({ length: 10 }, () => new Float64Array(dets.length));
    const tpc = new Array<number>(10).fill(0);
    dets.forEach((i, k) => {
      for (let t = 0; t < 10; t++) {
        if ((tp[i]! >> t) & 1) tpc[t]!++;
        recall[t]![k] = tpc[t]! / (nl + 1e-16);
        precision[t]![k] = tpc[t]! / (k + 1);
      }
    });
    for (let xi = 0; xi < 1000; xi++) {
      rCurve[ci]![xi] = interp(-CURVE_X[xi]!, negConf, recall[0]!, 0);
      pCurve[ci]![xi] = interp(-CURVE_X[xi]!, negConf, precision[0]!, 1);
    }
    for (let t = 0; t < 10; t++) ap[ci]![t] = computeAp(recall[t]!, precision[t]!);
  });
  const f1Curve = classes.map((_, ci) => Float64Array.from(pCurve[ci]!, (p, xi) => (2 * p * rCurve[ci]![xi]!) / (p + rCurve[ci]![xi]! + 1e-16)));
  let at = 0;
  if (nc) {
    const mean = Float64Array.from({ length: 1000 }, (_, xi) => f1Curve.reduce((s, row) => s + row[xi]!, 0) / nc);
    const smoothed = smooth(mean, 0.1);
    for (let xi = 1; xi < 1000; xi++) if (smoothed[xi]! > smoothed[at]!) at = xi;
  }
  return {
    classes,
    precision: pCurve.map((row) => row[at]!),
    recall: rCurve.map((row) => row[at]!),
    f1: f1Curve.map((row) => row[at]!),
    ap,
  };
}

/** box_iou in float32: [labels x predictions], boxes as x1, y1, x2, y2 rows. */
export function boxIou(labels: Float32Array, preds: Float32Array): Float32Array {
  const nl = labels.length / 4;
  const np = preds.length / 4;
  const out = new Float32Array(nl * np);
  for (let i = 0; i < nl; i++) {
    const [a1x, a1y, a2x, a2y] = labels.subarray(4 * i, 4 * i + 4);
    const areaA = f32(f32(a2x! - a1x!) * f32(a2y! - a1y!));
    for (let j = 0; j < np; j++) {
      const [b1x, b1y, b2x, b2y] = preds.subarray(4 * j, 4 * j + 4);
      const w = Math.max(0, f32(Math.min(a2x!, b2x!) - Math.max(a1x!, b1x!)));
      const h = Math.max(0, f32(Math.min(a2y!, b2y!) - Math.max(a1y!, b1y!)));
      const inter = f32(w * h);
      const areaB = f32(f32(b2x! - b1x!) * f32(b2y! - b1y!));
      out[i * np + j] = f32(inter / f32(f32(f32(areaA + areaB) - inter) + EPS_IOU));
    }
  }
  return out;
}

/** kpt_iou (OKS) in float32: [labels x predictions]; keypoints as K x (x, y, v) rows; area per label. */
export function keypointIou(labels: Float32Array, preds: Float32Array, area: Float32Array, sigmas: number[]): Float32Array {
  const k = sigmas.length;
  const nl = area.length;
  const np = preds.length / (k * 3);
  const denom = sigmas.map((s) => {
    const t = f32(2 * f32(s));
    return f32(t * t);
  });
  const out = new Float32Array(nl * np);
  for (let i = 0; i < nl; i++) {
    let visible = 0;
    for (let q = 0; q < k; q++) if (labels[(i * k + q) * 3 + 2] !== 0) visible++;
    for (let j = 0; j < np; j++) {
      let sum = 0;
      for (let q = 0; q < k; q++) {
        const g = (i * k + q) * 3;
        const p = (j * k + q) * 3;
        const dx = f32(labels[g]! - preds[p]!);
        const dy = f32(labels[g + 1]! - preds[p + 1]!);
        const d = f32(f32(dx * dx) + f32(dy * dy));
        const e = f32(d / f32(f32(f32(denom[q]!) * f32(area[i]! + EPS_IOU)) * 2));
        if (labels[g + 2] !== 0) sum = f32(sum + f32(Math.exp(-e)));
      }
      out[i * np + j] = f32(sum / f32(visible + EPS_IOU));
    }
  }
  return out;
}

/**
 * match_predictions (greedy): per prediction, in NMS (descending confidence) order, the best
 * unclaimed label of its class at each threshold. `iou` is [labels x predictions]. Returns a
 * 10-bit mask per prediction.
 */
export function matchPredictions(predClass: ArrayLike<number>, labelClass: ArrayLike<number>, iou: Float32Array): Uint16Array {
  const nl = labelClass.length;
  const np = predClass.length;
  const correct = new Uint16Array(np);
  const claimed = new Uint16Array(nl);
  const masked = (i: number, j: number) => (labelClass[i] === predClass[j] ? iou[i * np + j]! : 0);
  for (let j = 0; j < np; j++) {
    let any = false;
    for (let i = 0; i < nl; i++) if (masked(i, j) >= IOU_THRESHOLDS[0]!) any = true;
    if (!any) continue;
    for (let t = 0; t < 10; t++) {
      // argmax over unclaimed labels (first on ties), as np.where(matched, 0, iou).argmax(0).
      let best = 0;
      let bestIou = -1;
      for (let i = 0; i < nl; i++) {
        const v = (claimed[i]! >> t) & 1 ? 0 : masked(i, j);
        if (v > bestIou) {
          bestIou = v;
          best = i;
        }
      }
      if (bestIou >= IOU_THRESHOLDS[t]!) {
        correct[j]! |= 1 << t;
        claimed[best]! |= 1 << t;
      }
    }
  }
  return correct;
}

export type UltralyticsFamily = 'B' | 'P';

export interface UltralyticsImage {
  /** Network-space boxes (x1, y1, x2, y2 rows, float32), in NMS order. */
  predBoxes: Float32Array;
  predClass: Int32Array;
  conf: Float32Array;
  /** Pose: K x (x, y, v) per prediction, network space. */
  predKeypoints?: Float32Array;
  labelBoxes: Float32Array;
  labelClass: Int32Array;
  labelKeypoints?: Float32Array;
}

/** The per-dataset state of `yolo val`'s metrics: per detection its matches, confidence and class; per label its class. */
export class UltralyticsMetrics {
  readonly #families: UltralyticsFamily[];
  readonly #sigmas: number[] | undefined;
  readonly #tp = new Map<UltralyticsFamily, number[]>();
  readonly #conf: number[] = [];
  readonly #predClass: number[] = [];
  readonly #targetClass: number[] = [];

  constructor(families: UltralyticsFamily[], sigmas?: number[]) {
    this.#families = families;
    this.#sigmas = sigmas;
    for (const f of families) this.#tp.set(f, []);
  }

  add(img: UltralyticsImage): void {
    const np = img.predClass.length;
    const nl = img.labelClass.length;
    for (const family of this.#families) {
      let tp: Uint16Array = new Uint16Array(np);
      if (nl && np) {
        let iou: Float32Array;
        if (family === 'B') iou = boxIou(img.labelBoxes, img.predBoxes);
        else {
          // area = xyxy2xywh(label boxes)[:, 2:].prod(1) * 0.53
          const area = Float32Array.from({ length: nl }, (_, i) =>
            f32(f32(f32(img.labelBoxes[4 * i + 2]! - img.labelBoxes[4 * i]!) * f32(img.labelBoxes[4 * i + 3]! - img.labelBoxes[4 * i + 1]!)) * f32(0.53)),
          );
          iou = keypointIou(img.labelKeypoints!, img.predKeypoints!, area, this.#sigmas!);
        }
        tp = matchPredictions(img.predClass, img.labelClass, iou);
      }
      this.#tp.get(family)!.push(...tp);
    }
    this.#conf.push(...img.conf);
    this.#predClass.push(...img.predClass);
    this.#targetClass.push(...img.labelClass);
  }

  /** results_dict of `yolo val`: metrics/precision(X), recall, mAP50, mAP50-95 per family, and fitness. */
  result(): { overall: Record<string, number>; perClass: Map<number, { ap50: number; ap: number }> } {
    const overall: Record<string, number> = {};
    let fitness = 0;
    const perClass = new Map<number, { ap50: number; ap: number }>();
    for (const family of this.#families) {
      const r = apPerClass(
        Uint16Array.from(this.#tp.get(family)!),
        Float32Array.from(this.#conf),
        Int32Array.from(this.#predClass),
        Int32Array.from(this.#targetClass),
      );
      const apMean = r.ap.map((row) => npMean(row));
      const map = npMean(r.ap.flat());
      overall[`metrics/precision(${family})`] = npMean(r.precision);
      overall[`metrics/recall(${family})`] = npMean(r.recall);
      overall[`metrics/mAP50(${family})`] = npMean(r.ap.map((row) => row[0]!));
      overall[`metrics/mAP50-95(${family})`] = map;
      fitness += map;
      if (family === 'B') r.classes.forEach((c, i) => perClass.set(c, { ap50: r.ap[i]![0]!, ap: apMean[i]! }));
    }
    overall.fitness = fitness;
    return { overall, perClass };
  }
}
