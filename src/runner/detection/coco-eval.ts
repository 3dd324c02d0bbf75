// COCO evaluation, a line-for-line port of pycocotools' COCOeval (evaluate, accumulate,
// summarize), so that kinfer's mAP equals pycocotools' to the last bit rather than "close".
// The quirks that make other tools differ are kept on purpose:
//   - IoU thresholds are numpy.linspace(.5, .95, 10), computed as numpy does: the ninth is
//     0.8999999999999999, so an IoU of exactly 0.9 counts at "0.90";
//   - precision is tp / (tp + fp + 2.2e-16), so a perfect AP is 0.9999999999999999, not 1;
//   - a crowd ground truth's IoU is intersection / detection area, and it can match many times;
//   - ground truths are ignored by `iscrowd` or by their annotation `area` outside the range,
//     unmatched detections by their area: the box's when the result has one (loadRes checks
//     'bbox' first), else the mask's or the keypoints' extent;
//   - matching walks the score-sorted detections (stable sort) against ground truths ordered
//     non-ignored first, and stops at the first ignored one once a regular match is found;
//   - precision is made monotone, then read at 101 recall points with searchsorted(side=left);
//   - a category without any non-ignored ground truth is left out (-1), not counted as 0;
//   - a matched ground-truth id of 0 reads as "no match" (pycocotools stores ids in a zeros array).
// Modes: boxes ('bbox'), masks ('segm', RLE IoU from ../segmentation/rle.ts) and pose
// ('keypoints', OKS with pycocotools' own parameters); a custom IoU function can be passed too.
import { rleArea, rleIou, rleToBbox, type Rle } from '../segmentation/rle.ts';

export interface CocoGroundTruth {
  id: number;
  image_id: number;
  category_id: number;
  /** [x, y, width, height] in pixels. */
  bbox: [number, number, number, number];
  /** The annotation's area (for boxes, usually w*h; COCO gives the mask area). */
  area: number;
  iscrowd: 0 | 1;
  /** Pose: [x1, y1, v1, x2, y2, v2, ...] (v = 0 not labelled, 1 occluded, 2 visible). */
  keypoints?: number[];
  num_keypoints?: number;
  /** Instance segmentation: the mask as RLE (polygons must be rasterized first). */
  segmentation?: Rle;
  /**
   * YOLO labels: the values as Ultralytics holds them (float32, normalized): the box centre and
   * size (from the polygon's extent for segments), keypoints with Ultralytics' visibility.
   */
  yolo?: { xywh: [number, number, number, number]; keypoints?: number[] };
}

export interface CocoDetection {
  image_id: number;
  category_id: number;
  /**
   * [x, y, width, height]. Keypoint results may leave it out (or empty): pycocotools then takes
   * box and area from the keypoints' extent; with a box, its area is the box's (loadRes checks
   * 'bbox' before 'keypoints').
   */
  bbox?: [number, number, number, number] | [];
  score: number;
  keypoints?: number[];
  segmentation?: Rle;
}

export type IouType = 'bbox' | 'segm' | 'keypoints';

/** COCO's 17 person keypoint sigmas (pycocotools Params.kpt_oks_sigmas). */
export const COCO_KEYPOINT_SIGMAS = [0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89].map((s) => s / 10);

/** IoU of each detection (rows) with each ground truth (columns); crowd columns divide by the detection area. */
export type IouFunction<D, G> = (dts: D[], gts: G[], iscrowd: boolean[]) => number[][];

export interface CocoParams {
  imgIds: number[];
  catIds: number[];
  iouThrs: number[];
  recThrs: number[];
  maxDets: number[];
  areaRng: Array<[number, number]>;
  areaRngLbl: string[];
}

/** numpy.linspace(start, stop, num): i * step + start, the last value exactly `stop`. */
export function linspace(start: number, stop: number, num: number): number[] {
  const step = (stop - start) / (num - 1);
  return Array.from({ length: num }, (_, i) => (i === num - 1 ? stop : i * step + start));
}

export function defaultParams(imgIds: number[], catIds: number[], iouType: IouType = 'bbox'): CocoParams {
  const common = {
    imgIds: [...new Set(imgIds)].sort((a, b) => a - b),
    catIds: [...new Set(catIds)].sort((a, b) => a - b),
    iouThrs: linspace(0.5, 0.95, Math.round((0.95 - 0.5) / 0.05) + 1),
    recThrs: linspace(0, 1, Math.round((1 - 0) / 0.01) + 1),
  };
  if (iouType === 'keypoints') {
    return {
      ...common,
      maxDets: [20],
      areaRng: [
        [0, 1e5 ** 2],
        [32 ** 2, 96 ** 2],
        [96 ** 2, 1e5 ** 2],
      ],
      areaRngLbl: ['all', 'medium', 'large'],
    };
  }
  return {
    ...common,
    maxDets: [1, 10, 100],
    areaRng: [
      [0, 1e5 ** 2],
      [0, 32 ** 2],
      [32 ** 2, 96 ** 2],
      [96 ** 2, 1e5 ** 2],
    ],
    areaRngLbl: ['all', 'small', 'medium', 'large'],
  };
}

/**
 * pycocotools' computeOks: per keypoint exp(-d^2 / (2 * area * (2 sigma)^2)), averaged over the
 * labelled ones; a ground truth without labelled keypoints measures the distance to a box twice
 * its size around its bbox instead.
 */
export function oksIou(sigmas: number[]): IouFunction<{ keypoints?: number[] }, CocoGroundTruth> {
  const vars = sigmas.map((s) => (s * 2) ** 2);
  const EPS = 2.220446049250313e-16;
  return (dts, gts) =>
    dts.map((dt) =>
      gts.map((gt) => {
        const g = gt.keypoints ?? [];
        const d = dt.keypoints ?? [];
        const labelled = sigmas.map((_, k) => g[3 * k + 2]! > 0);
        const k1 = labelled.filter(Boolean).length;
        const [bx, by, bw, bh] = gt.bbox;
        const x0 = bx - bw;
        const x1 = bx + bw * 2;
        const y0 = by - bh;
        const y1 = by + bh * 2;
        let sum = 0;
        let count = 0;
        sigmas.forEach((_, k) => {
          const xd = d[3 * k]!;
          const yd = d[3 * k + 1]!;
          let dx: number;
          let dy: number;
          if (k1 > 0) {
            if (!labelled[k]) return;
            dx = xd - g[3 * k]!;
            dy = yd - g[3 * k + 1]!;
          } else {
            dx = Math.max(0, x0 - xd) + Math.max(0, xd - x1);
            dy = Math.max(0, y0 - yd) + Math.max(0, yd - y1);
          }
          const e = (dx ** 2 + dy ** 2) / vars[k]! / (gt.area + EPS) / 2;
          sum += Math.exp(-e);
          count++;
        });
        return sum / count;
      }),
    );
}

/** pycocotools' bbox IoU (maskApi bbIou). */
export const boxIou: IouFunction<{ bbox: number[] }, { bbox: number[] }> = (dts, gts, iscrowd) =>
  dts.map(({ bbox: d }) => {
    const da = d[2]! * d[3]!;
    return gts.map(({ bbox: g }, j) => {
      const w = Math.min(d[0]! + d[2]!, g[0]! + g[2]!) - Math.max(d[0]!, g[0]!);
      if (w <= 0) return 0;
      const h = Math.min(d[1]! + d[3]!, g[1]! + g[3]!) - Math.max(d[1]!, g[1]!);
      if (h <= 0) return 0;
      const i = w * h;
      const u = iscrowd[j] ? da : da + g[2]! * g[3]! - i;
      return i / u;
    });
  });

interface Dt extends CocoDetection {
  id: number;
  area: number;
  bbox: [number, number, number, number];
}

interface EvalImg {
  dtScores: number[];
  /** [T][D]: matched ground-truth id, 0 when unmatched. */
  dtMatches: number[][];
  dtIgnore: boolean[][];
  gtIgnore: number[];
}

/** Stable sort indices by key ascending (numpy argsort kind='mergesort'). */
function argsortStable(keys: number[]): number[] {
  return keys
    .map((k, i) => [k, i] as const)
    .sort((a, b) => a[0] - b[0] || a[1] - b[1])
    .map(([, i]) => i);
}

export interface CocoEvalResult {
  /**
   * COCOeval.summarize() in its order. Boxes (12): AP, AP50, AP75, APs, APm, APl, AR1, AR10,
   * AR100, ARs, ARm, ARl. Keypoints (10): AP, AP50, AP75, APm, APl, AR, AR50, AR75, ARm, ARl.
   */
  stats: number[];
  /** Per category: AP@[.5:.95], AP@.5 and recall@[.5:.95] (all areas, most detections); -1 where pycocotools has no value. */
  /** Per category: AP, AP50, recall, and the precision at the 101 recall thresholds at IoU 0.5 (pr50). */
  perCategory: Array<{ category_id: number; ap: number; ap50: number; recall: number; pr50: number[] }>;
}

export function cocoEvaluate<G extends CocoGroundTruth>(
  gts: G[],
  dets: CocoDetection[],
  opts: { imgIds: number[]; catIds: number[]; iouType?: IouType; sigmas?: number[]; iou?: IouFunction<Dt, G> },
): CocoEvalResult {
  const iouType = opts.iouType ?? 'bbox';
  const p = defaultParams(opts.imgIds, opts.catIds, iouType);
  const maskIou: IouFunction<Dt, G> = (d, g, crowd) =>
    rleIou(
      d.map((x) => x.segmentation!),
      g.map((x) => x.segmentation!),
      crowd,
    );
  const iouFn =
    opts.iou ??
    (iouType === 'segm' ? maskIou : ((iouType === 'keypoints' ? oksIou(opts.sigmas ?? COCO_KEYPOINT_SIGMAS) : boxIou) as unknown as IouFunction<Dt, G>));
  // loadRes: ids from 1 in load order; boxes: area = w*h; keypoints: bbox and area of their extent.
  // pycocotools picks the loadRes branch from the first result and applies it to all of them.
  const byBox = (dets[0]?.bbox?.length ?? 0) === 4;
  const dts: Dt[] = dets.map((d, i) => {
    if (byBox) {
      if (d.bbox?.length !== 4) throw new Error(`result ${i + 1} has no bbox, but the first result has one: give all results a bbox, or none`);
      return { ...d, bbox: d.bbox, id: i + 1, area: d.bbox[2] * d.bbox[3] };
    }
    if (d.segmentation) return { ...d, id: i + 1, area: rleArea(d.segmentation), bbox: rleToBbox(d.segmentation) };
    if (iouType !== 'keypoints' || !d.keypoints) throw new Error(`detection ${i + 1} has neither a bbox, a segmentation nor keypoints`);
    const xs = d.keypoints!.filter((_, j) => j % 3 === 0);
    const ys = d.keypoints!.filter((_, j) => j % 3 === 1);
    const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
    return { ...d, id: i + 1, area: (x1 - x0) * (y1 - y0), bbox: [x0, y0, x1 - x0, y1 - y0] };
  });
  // _prepare: keypoint ground truths without labelled keypoints are ignored, like crowds.
  const ignored = (g: G) => g.iscrowd === 1 || (iouType === 'keypoints' && g.num_keypoints === 0);
  const key = (img: number, cat: number) => `${img}:${cat}`;
  const byImageAndCategory = <T extends { image_id: number; category_id: number }>(items: T[]) => Map.groupBy(items, (x) => key(x.image_id, x.category_id));
  const gtsBy = byImageAndCategory(gts);
  const dtsBy = byImageAndCategory(dts);
  const maxDetAll = p.maxDets.at(-1)!;

  // computeIoU: detections by score (stable), at most maxDets[-1]; ground truths in load order.
  const ious = new Map<string, number[][]>();
  for (const img of p.imgIds) {
    for (const cat of p.catIds) {
      const g = gtsBy.get(key(img, cat)) ?? [];
      const d = dtsBy.get(key(img, cat)) ?? [];
      if (g.length === 0 && d.length === 0) continue;
      const sorted = argsortStable(d.map((x) => -x.score))
        .map((i) => d[i]!)
        .slice(0, maxDetAll);
      ious.set(
        key(img, cat),
        sorted.length === 0 || g.length === 0
          ? []
          : iouFn(
              sorted,
              g,
              g.map((x) => x.iscrowd === 1),
            ),
      );
    }
  }

  const T = p.iouThrs.length;
  const evaluateImg = (img: number, cat: number, aRng: [number, number], maxDet: number): EvalImg | null => {
    const gt0 = gtsBy.get(key(img, cat)) ?? [];
    const dt0 = dtsBy.get(key(img, cat)) ?? [];
    if (gt0.length === 0 && dt0.length === 0) return null;
    const ignoreOf = gt0.map((g) => (ignored(g) || g.area < aRng[0] || g.area > aRng[1] ? 1 : 0));
    const gtind = argsortStable(ignoreOf);
    const gt = gtind.map((i) => gt0[i]!);
    const gtIg = gtind.map((i) => ignoreOf[i]!);
    const dt = argsortStable(dt0.map((d) => -d.score))
      .map((i) => dt0[i]!)
      .slice(0, maxDet);
    const iscrowd = gt.map((g) => g.iscrowd === 1);
    const allIous = ious.get(key(img, cat)) ?? [];
    const iou = allIous.length === 0 ? [] : allIous.map((row) => gtind.map((j) => row[j]!));
    const gtm = Array.from({ length: T }, () => new Array<number>(gt.length).fill(0));
    const dtm = Array.from({ length: T }, () => new Array<number>(dt.length).fill(0));
    const dtIg = Array.from({ length: T }, () => new Array<boolean>(dt.length).fill(false));
    if (iou.length > 0) {
      p.iouThrs.forEach((t, tind) => {
        dt.forEach((d, dind) => {
          let best = Math.min(t, 1 - 1e-10);
          let m = -1;
          for (let gind = 0; gind < gt.length; gind++) {
            if (gtm[tind]![gind]! > 0 && !iscrowd[gind]) continue;
            if (m > -1 && gtIg[m] === 0 && gtIg[gind] === 1) break;
            if (iou[dind]![gind]! < best) continue;
            best = iou[dind]![gind]!;
            m = gind;
          }
          if (m === -1) return;
          dtIg[tind]![dind] = gtIg[m] === 1;
          dtm[tind]![dind] = gt[m]!.id;
          gtm[tind]![m] = d.id;
        });
      });
    }
    // Unmatched detections outside the area range are ignored.
    dt.forEach((d, dind) => {
      const outside = d.area < aRng[0] || d.area > aRng[1];
      for (let t = 0; t < T; t++) if (dtm[t]![dind] === 0 && outside) dtIg[t]![dind] = true;
    });
    return { dtScores: dt.map((d) => d.score), dtMatches: dtm, dtIgnore: dtIg, gtIgnore: gtIg };
  };

  // evaluate(): evalImgs[cat][area][img] with maxDets[-1].
  const evalImgs = p.catIds.map((cat) => p.areaRng.map((aRng) => p.imgIds.map((img) => evaluateImg(img, cat, aRng, maxDetAll))));

  // accumulate()
  const R = p.recThrs.length;
  const K = p.catIds.length;
  const A = p.areaRng.length;
  const M = p.maxDets.length;
  const precision = new Float64Array(T * R * K * A * M).fill(-1);
  const recall = new Float64Array(T * K * A * M).fill(-1);
  const pIdx = (t: number, r: number, k: number, a: number, m: number) => (((t * R + r) * K + k) * A + a) * M + m;
  const rIdx = (t: number, k: number, a: number, m: number) => ((t * K + k) * A + a) * M + m;
  const EPS = 2.220446049250313e-16; // np.spacing(1)
  for (let k = 0; k < K; k++) {
    for (let a = 0; a < A; a++) {
      for (let m = 0; m < M; m++) {
        const maxDet = p.maxDets[m]!;
        const E = evalImgs[k]![a]!.filter((e): e is EvalImg => e !== null);
        if (E.length === 0) continue;
        const scores = E.flatMap((e) => e.dtScores.slice(0, maxDet));
        const inds = argsortStable(scores.map((s) => -s));
        const gtIg = E.flatMap((e) => e.gtIgnore);
        const npig = gtIg.filter((g) => g === 0).length;
        if (npig === 0) continue;
        for (let t = 0; t < T; t++) {
          const matches = E.flatMap((e) => e.dtMatches[t]!.slice(0, maxDet));
          const ignores = E.flatMap((e) => e.dtIgnore[t]!.slice(0, maxDet));
          const nd = inds.length;
          const rc = new Array<number>(nd);
          const pr = new Array<number>(nd);
          let tp = 0;
          let fp = 0;
          inds.forEach((i, n) => {
            if (!ignores[i]) {
              if (matches[i] !== 0) tp++;
              else fp++;
            }
            rc[n] = tp / npig;
            pr[n] = tp / (fp + tp + EPS);
          });
          recall[rIdx(t, k, a, m)] = nd ? rc[nd - 1]! : 0;
          for (let i = nd - 1; i > 0; i--) if (pr[i]! > pr[i - 1]!) pr[i - 1] = pr[i]!;
          // searchsorted(rc, recThrs, side='left'); positions past the end leave 0 (the try/except).
          let pos = 0;
          for (let ri = 0; ri < R; ri++) {
            const thr = p.recThrs[ri]!;
            while (pos < nd && rc[pos]! < thr) pos++;
            precision[pIdx(t, ri, k, a, m)] = pos < nd ? pr[pos]! : 0;
          }
        }
      }
    }
  }

  // summarize()
  const mean = (values: number[]) => {
    const valid = values.filter((v) => v > -1);
    return valid.length === 0 ? -1 : valid.reduce((s, v) => s + v, 0) / valid.length;
  };
  const ap = (tIdx: number[] | null, a: number, m: number, ks = [...Array(K).keys()]) => {
    const vals: number[] = [];
    for (const t of tIdx ?? [...Array(T).keys()]) for (let r = 0; r < R; r++) for (const k of ks) vals.push(precision[pIdx(t, r, k, a, m)]!);
    return mean(vals);
  };
  const ar = (tIdx: number[] | null, a: number, m: number, ks = [...Array(K).keys()]) => {
    const vals: number[] = [];
    for (const t of tIdx ?? [...Array(T).keys()]) for (const k of ks) vals.push(recall[rIdx(t, k, a, m)]!);
    return mean(vals);
  };
  const last = M - 1;
  const at = (thr: number) => [p.iouThrs.findIndex((x) => x === thr)];
  // summarize(): _summarizeDets (12 numbers) or _summarizeKps (10 numbers, 20 detections).
  const stats =
    iouType === 'keypoints'
      ? [
          ap(null, 0, 0),
          ap(at(0.5), 0, 0),
          ap(at(0.75), 0, 0),
          ap(null, 1, 0),
          ap(null, 2, 0),
          ar(null, 0, 0),
          ar(at(0.5), 0, 0),
          ar(at(0.75), 0, 0),
          ar(null, 1, 0),
          ar(null, 2, 0),
        ]
      : [
          ap(null, 0, last),
          ap(at(0.5), 0, last),
          ap(at(0.75), 0, last),
          ap(null, 1, last),
          ap(null, 2, last),
          ap(null, 3, last),
          ar(null, 0, 0),
          ar(null, 0, 1),
          ar(null, 0, last),
          ar(null, 1, last),
          ar(null, 2, last),
          ar(null, 3, last),
        ];
  const t50 = at(0.5)[0]!;
  const perCategory = p.catIds.map((category_id, k) => ({
    category_id,
    ap: ap(null, 0, last, [k]),
    ap50: ap(at(0.5), 0, last, [k]),
    recall: ar(null, 0, last, [k]),
    // The precision-recall curve at IoU 0.5: precision at each of the 101 recall thresholds (-1: no ground truth).
    pr50: t50 < 0 ? [] : Array.from({ length: R }, (_, r) => precision[pIdx(t50, r, k, 0, last)]!),
  }));
  return { stats, perCategory };
}
