// Streaming classification metrics: sparse (true, predicted) counts and two counters, so memory
// grows with the classes seen, not with the dataset. Definitions follow scikit-learn: per-class
// precision/recall/F1 with zero_division=0, macro averages over the labels present in y_true or
// y_pred (sklearn's default `labels=unique_labels(y_true, y_pred)`).
//
// A model may know more classes than the dataset (an ImageNet classifier on a 10-class subset):
// the report covers the dataset's classes plus every class the model predicted, so a prediction
// outside the dataset is an error in its own column, as `sklearn.metrics.confusion_matrix` shows
// it, and a 1000-class model on 10 folders does not produce a 1000 x 1000 matrix of zeros.
import type { EvaluationMetrics, PerClassMetric } from '../../contract/index.ts';

export class ClassificationMetrics {
  readonly #names: readonly string[];
  readonly #datasetClassIds: readonly number[];
  /** Count per (true, predicted) pair, keyed true * K + predicted. */
  readonly #pairs = new Map<number, number>();
  #top1 = 0;
  #topK = 0;
  #count = 0;
  readonly #k: number;

  /**
   * `classNames`: the model's classes in id order; `datasetClassIds`: the classes the dataset
   * defines (always reported, even when nothing is labelled or predicted as them). Default: all.
   */
  constructor(classNames: readonly string[], datasetClassIds?: readonly number[], k = 5) {
    this.#names = classNames;
    this.#datasetClassIds = datasetClassIds ?? classNames.map((_, i) => i);
    this.#k = Math.min(k, classNames.length);
  }

  /** `ranked`: class ids best first (at least the top k). */
  add(trueId: number, ranked: readonly number[]): void {
    const predicted = ranked[0]!;
    const key = trueId * this.#names.length + predicted;
    this.#pairs.set(key, (this.#pairs.get(key) ?? 0) + 1);
    this.#count++;
    if (predicted === trueId) this.#top1++;
    if (ranked.slice(0, this.#k).includes(trueId)) this.#topK++;
  }

  #ultralytics(): Record<string, number> {
    if (this.#count === 0) return {};
    const top1 = Math.fround(this.#top1 / this.#count);
    const top5 = Math.fround(this.#topK / this.#count);
    return { 'ultralytics/accuracy_top1': top1, 'ultralytics/accuracy_top5': top5, 'ultralytics/fitness': (top1 + top5) / 2 };
  }

  get count(): number {
    return this.#count;
  }

  result(): EvaluationMetrics {
    const n = this.#names.length;
    const labels = new Set(this.#datasetClassIds);
    for (const key of this.#pairs.keys()) {
      labels.add(Math.floor(key / n));
      labels.add(key % n);
    }
    const ids = [...labels].sort((a, b) => a - b);
    const index = new Map(ids.map((id, i) => [id, i]));
    const matrix = ids.map(() => ids.map(() => 0));
    for (const [key, count] of this.#pairs) matrix[index.get(Math.floor(key / n))!]![index.get(key % n)!]! += count;

    const perClass: PerClassMetric[] = [];
    const present: PerClassMetric[] = [];
    ids.forEach((id, c) => {
      const tp = matrix[c]![c]!;
      const support = matrix[c]!.reduce((a, b) => a + b, 0);
      const predicted = matrix.reduce((a, row) => a + row[c]!, 0);
      const precision = predicted === 0 ? 0 : tp / predicted;
      const recall = support === 0 ? 0 : tp / support;
      const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
      const metric = { class_id: id, class_name: this.#names[id]!, precision, recall, f1, support };
      perClass.push(metric);
      if (support > 0 || predicted > 0) present.push(metric);
    });
    const mean = (pick: (m: PerClassMetric) => number | null) => (present.length === 0 ? null : present.reduce((a, m) => a + pick(m)!, 0) / present.length);
    const accuracy = this.#count === 0 ? null : this.#top1 / this.#count;
    return {
      overall_metrics: {
        accuracy,
        top5_accuracy: this.#count === 0 ? null : this.#topK / this.#count,
        // `yolo val`'s own figures: the same counts averaged in float32 (ClassifyMetrics), and its fitness.
        ...this.#ultralytics(),
        precision: mean((m) => m.precision),
        recall: mean((m) => m.recall),
        f1: mean((m) => m.f1),
        evaluated_images: this.#count,
      },
      per_class_metrics: perClass,
      confusion_matrix: matrix,
      class_names: ids.map((id) => this.#names[id]!),
      primary_metric_name: 'accuracy',
      primary_metric_value: accuracy,
    };
  }
}
