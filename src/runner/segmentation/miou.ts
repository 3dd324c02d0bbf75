// Semantic segmentation metrics as mmsegmentation computes them (IoUMetric): intersection, union,
// prediction and label areas summed over the whole dataset (not averaged per image), pixels whose
// label is `ignoreIndex` left out of both, and a class with an empty union (absent from the
// ground truth and the predictions) NaN and left out of the mean rather than scored 0.
// Streaming: memory is four counters per class whatever the dataset size.

export interface SegmentationMetrics {
  /** Mean IoU over classes with a non-empty union. */
  mIoU: number;
  /** Mean per-class accuracy over classes present in the ground truth. */
  mAcc: number;
  /** Pixel accuracy: correctly labelled / labelled pixels. */
  aAcc: number;
  /** Per class; NaN where undefined (union or label area 0). */
  perClass: Array<{ class_id: number; iou: number; acc: number; label_pixels: number; pred_pixels: number; intersect_pixels: number }>;
}

/** An accumulator's areas per class, as JSON (an image's own, kept to be summed again). */
export interface SegmentationCounts {
  intersect: number[];
  pred: number[];
  label: number[];
}

export class SegmentationAccumulator {
  readonly #numClasses: number;
  readonly #ignoreIndex: number;
  readonly #intersect: Float64Array;
  readonly #pred: Float64Array;
  readonly #label: Float64Array;

  constructor(numClasses: number, ignoreIndex = 255) {
    this.#numClasses = numClasses;
    this.#ignoreIndex = ignoreIndex;
    this.#intersect = new Float64Array(numClasses);
    this.#pred = new Float64Array(numClasses);
    this.#label = new Float64Array(numClasses);
  }

  /** One image: predicted and ground-truth class ids, same length (H*W). */
  add(pred: ArrayLike<number>, label: ArrayLike<number>): void {
    if (pred.length !== label.length) throw new Error(`prediction has ${pred.length} pixels, ground truth ${label.length}`);
    const n = this.#numClasses;
    for (let i = 0; i < label.length; i++) {
      const l = label[i]!;
      if (l === this.#ignoreIndex) continue;
      const p = pred[i]!;
      // mmseg counts predictions and labels with histc over [0, num_classes - 1]: others drop out.
      if (l >= 0 && l < n) this.#label[l]!++;
      if (p >= 0 && p < n) this.#pred[p]!++;
      if (p === l && l >= 0 && l < n) this.#intersect[l]!++;
    }
  }

  counts(): SegmentationCounts {
    return { intersect: [...this.#intersect], pred: [...this.#pred], label: [...this.#label] };
  }

  /** Adds another accumulator's counts (one image's, scored on its own first). */
  addCounts(other: SegmentationCounts): void {
    const n = this.#numClasses;
    if (other.intersect.length !== n || other.pred.length !== n || other.label.length !== n)
      throw new Error(`cannot add counts of another number of classes into ${n}`);
    for (let c = 0; c < n; c++) {
      this.#intersect[c]! += other.intersect[c]!;
      this.#pred[c]! += other.pred[c]!;
      this.#label[c]! += other.label[c]!;
    }
  }

  result(): SegmentationMetrics {
    const perClass = Array.from({ length: this.#numClasses }, (_, c) => {
      const union = this.#pred[c]! + this.#label[c]! - this.#intersect[c]!;
      return {
        class_id: c,
        iou: union === 0 ? NaN : this.#intersect[c]! / union,
        acc: this.#label[c] === 0 ? NaN : this.#intersect[c]! / this.#label[c]!,
        label_pixels: this.#label[c]!,
        pred_pixels: this.#pred[c]!,
        intersect_pixels: this.#intersect[c]!,
      };
    });
    const nanmean = (xs: number[]) => {
      const v = xs.filter((x) => !Number.isNaN(x));
      return v.length === 0 ? NaN : v.reduce((a, b) => a + b, 0) / v.length;
    };
    const labelled = this.#label.reduce((a, b) => a + b, 0);
    return {
      mIoU: nanmean(perClass.map((c) => c.iou)),
      mAcc: nanmean(perClass.map((c) => c.acc)),
      aAcc: labelled === 0 ? NaN : this.#intersect.reduce((a, b) => a + b, 0) / labelled,
      perClass,
    };
  }
}
