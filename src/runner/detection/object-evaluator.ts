// Scores a test run of an object task. Dataset-level figures are pycocotools' (coco-eval.ts) over
// every image, for boxes and, where the task has them, masks or keypoints. Per image and per
// class it also counts what a user looks at first: among detections with confidence >= 0.25
// (Ultralytics' predict threshold), which match a labelled object of their class at IoU (or OKS)
// >= 0.5, greedily by confidence. A detection on a crowd region (or an unlabelled pose) is neither
// right nor wrong, as in COCO.
import type { EvaluationMetrics, PerClassMetric } from '../../contract/index.ts';
import { rleIou } from '../segmentation/rle.ts';
import { boxIou, COCO_KEYPOINT_SIGMAS, cocoEvaluate, oksIou, type CocoDetection, type CocoGroundTruth, type IouType } from './coco-eval.ts';

export const PREDICT_CONFIDENCE = 0.25;
export const MATCH_IOU = 0.5;

const STAT_NAMES: Record<'dets' | 'keypoints', string[]> = {
  dets: ['mAP50-95', 'mAP50', 'mAP75', 'mAP_small', 'mAP_medium', 'mAP_large', 'AR1', 'AR10', 'AR100', 'AR_small', 'AR_medium', 'AR_large'],
  keypoints: ['mAP50-95', 'mAP50', 'mAP75', 'mAP_medium', 'mAP_large', 'AR20', 'AR20_50', 'AR20_75', 'AR_medium', 'AR_large'],
};

export interface ImageScore {
  tp: number;
  fp: number;
  fn: number;
  /** Per detection (input order): the IoU/OKS of its match, null when it matched nothing. */
  matchIous: Array<number | null>;
}

/** OKS sigmas: COCO's for 17 keypoints, else 1/K each (Ultralytics' choice; pycocotools has none). */
export function keypointSigmas(k: number): number[] {
  return k === 17 ? COCO_KEYPOINT_SIGMAS : new Array<number>(k).fill(1 / k);
}

export class ObjectEvaluator {
  readonly #iouType: IouType;
  readonly #classNames: string[];
  readonly #categoryIds: number[];
  readonly #classOf: Map<number, number>;
  readonly #evaluated: number[];
  readonly #sigmas: number[];
  readonly #imageIds: number[] = [];
  readonly #gts: CocoGroundTruth[] = [];
  readonly #dets: CocoDetection[] = [];
  readonly #counts: Array<{ tp: number; fp: number; fn: number; support: number }>;

  /** false: score images one by one only (the per-image figures), keeping nothing for the dataset's evaluation. */
  readonly #keep: boolean;

  constructor(opts: { iouType: IouType; classNames: string[]; categoryIds: number[]; evaluatedCategoryIds: number[]; keypoints?: number; keep?: boolean }) {
    this.#keep = opts.keep ?? true;
    this.#iouType = opts.iouType;
    this.#classNames = opts.classNames;
    this.#categoryIds = opts.categoryIds;
    this.#classOf = new Map(opts.categoryIds.map((c, i) => [c, i]));
    this.#evaluated = opts.evaluatedCategoryIds;
    this.#sigmas = keypointSigmas(opts.keypoints ?? 17);
    this.#counts = opts.classNames.map(() => ({ tp: 0, fp: 0, fn: 0, support: 0 }));
  }

  #iou(dts: CocoDetection[], gts: CocoGroundTruth[]): number[][] {
    const crowd = gts.map((g) => g.iscrowd === 1);
    if (this.#iouType === 'segm')
      return rleIou(
        dts.map((d) => d.segmentation!),
        gts.map((g) => g.segmentation!),
        crowd,
      );
    if (this.#iouType === 'keypoints') return oksIou(this.#sigmas)(dts, gts, crowd);
    return boxIou(dts as Array<CocoDetection & { bbox: number[] }>, gts, crowd);
  }

  /** One image: its ground truth and detections (best first). An image read or not, it counts. */
  add(imageId: number, gts: CocoGroundTruth[], dets: CocoDetection[]): ImageScore {
    if (this.#keep) {
      this.#imageIds.push(imageId);
      this.#gts.push(...gts);
      this.#dets.push(...dets);
    }
    const ignored = (g: CocoGroundTruth) => g.iscrowd === 1 || (this.#iouType === 'keypoints' && g.num_keypoints === 0);
    const score: ImageScore = { tp: 0, fp: 0, fn: 0, matchIous: dets.map(() => null) };
    const categories = new Set([...gts.map((g) => g.category_id), ...dets.map((d) => d.category_id)]);
    for (const cat of categories) {
      const cls = this.#classOf.get(cat);
      const g = gts.filter((x) => x.category_id === cat);
      const dIdx = dets.map((d, i) => [d, i] as const).filter(([d]) => d.category_id === cat && d.score >= PREDICT_CONFIDENCE);
      const ious =
        g.length === 0 || dIdx.length === 0
          ? []
          : this.#iou(
              dIdx.map(([d]) => d),
              g,
            );
      const taken = new Array<boolean>(g.length).fill(false);
      let tp = 0;
      let fp = 0;
      dIdx.forEach(([, di], row) => {
        let best = -1;
        let bestIou = MATCH_IOU;
        let onIgnored = false;
        g.forEach((gt, j) => {
          const v = ious[row]![j]!;
          if (v < MATCH_IOU) return;
          if (ignored(gt)) onIgnored = true;
          else if (!taken[j] && v >= bestIou) {
            best = j;
            bestIou = v;
          }
        });
        if (best >= 0) {
          taken[best] = true;
          score.matchIous[di] = bestIou;
          tp++;
        } else if (!onIgnored) fp++;
      });
      const support = g.filter((x) => !ignored(x)).length;
      const fn = support - tp;
      score.tp += tp;
      score.fp += fp;
      score.fn += fn;
      if (cls !== undefined) {
        const c = this.#counts[cls]!;
        c.tp += tp;
        c.fp += fp;
        c.fn += fn;
        c.support += support;
      }
    }
    return score;
  }

  result(): EvaluationMetrics {
    const types: IouType[] = this.#iouType === 'bbox' ? ['bbox'] : [this.#iouType, 'bbox'];
    const overall: Record<string, number | null> = {};
    let primaryPerCategory: Array<{ category_id: number; ap: number; ap50: number; pr50: number[] }> = [];
    for (const type of types) {
      const { stats, perCategory } = cocoEvaluate(this.#gts, this.#dets, {
        imgIds: this.#imageIds,
        catIds: this.#evaluated,
        iouType: type,
        sigmas: this.#sigmas,
      });
      STAT_NAMES[type === 'keypoints' ? 'keypoints' : 'dets'].forEach((name, i) => (overall[`${type}/${name}`] = stats[i]! < 0 ? null : stats[i]!));
      if (type === this.#iouType) primaryPerCategory = perCategory;
    }
    const apOf = new Map(primaryPerCategory.map((p) => [p.category_id, p]));
    const value = (v: number | undefined) => (v === undefined || v < 0 ? null : v);
    const perClass: PerClassMetric[] = this.#classNames.map((class_name, class_id) => {
      const c = this.#counts[class_id]!;
      const precision = c.tp + c.fp === 0 ? null : c.tp / (c.tp + c.fp);
      const recall = c.support === 0 ? null : c.tp / c.support;
      const f1 = precision === null || recall === null ? null : precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
      const ap = apOf.get(this.#categoryIds[class_id]!);
      const curve = ap && ap.pr50.length > 0 && ap.pr50.every((v) => v >= 0) ? ap.pr50 : null;
      return { class_id, class_name, precision, recall, f1, support: c.support, ap: value(ap?.ap), ap50: value(ap?.ap50), pr_curve: curve };
    });
    const total = this.#counts.reduce((a, c) => ({ tp: a.tp + c.tp, fp: a.fp + c.fp, fn: a.fn + c.fn }), { tp: 0, fp: 0, fn: 0 });
    overall.precision = total.tp + total.fp === 0 ? null : total.tp / (total.tp + total.fp);
    overall.recall = total.tp + total.fn === 0 ? null : total.tp / (total.tp + total.fn);
    overall.evaluated_images = this.#imageIds.length;
    const primary = `${this.#iouType}/mAP50-95`;
    return {
      overall_metrics: overall,
      per_class_metrics: perClass,
      confusion_matrix: [],
      class_names: [...this.#classNames],
      primary_metric_name: primary,
      primary_metric_value: overall[primary] ?? null,
    };
  }
}
