// Streaming classification metrics: a K x K confusion matrix and two counters, so memory does not
// grow with the dataset. Definitions follow scikit-learn: per-class precision/recall/F1 with
// zero_division=0, and macro averages over the labels present in y_true or y_pred (sklearn's
// default `labels=unique_labels(y_true, y_pred)`).
import type { EvaluationMetrics, PerClassMetric } from '../../contract/index.ts';

export class ClassificationMetrics {
  readonly #names: readonly string[];
  readonly #matrix: number[][];
  #top1 = 0;
  #topK = 0;
  #count = 0;
  readonly #k: number;

  constructor(classNames: readonly string[], k = 5) {
    this.#names = classNames;
    this.#matrix = classNames.map(() => classNames.map(() => 0));
    this.#k = Math.min(k, classNames.length);
  }

  /** `ranked`: class ids best first (at least the top k). */
  add(trueId: number, ranked: readonly number[]): void {
    const predicted = ranked[0]!;
    this.#matrix[trueId]![predicted]!++;
    this.#count++;
    if (predicted === trueId) this.#top1++;
    if (ranked.slice(0, this.#k).includes(trueId)) this.#topK++;
  }

  get count(): number {
    return this.#count;
  }

  result(): EvaluationMetrics {
    const k = this.#names.length;
    const perClass: PerClassMetric[] = [];
    const present: PerClassMetric[] = [];
    for (let c = 0; c < k; c++) {
      const tp = this.#matrix[c]![c]!;
      const support = this.#matrix[c]!.reduce((a, b) => a + b, 0);
      let predicted = 0;
      for (let r = 0; r < k; r++) predicted += this.#matrix[r]![c]!;
      const precision = predicted === 0 ? 0 : tp / predicted;
      const recall = support === 0 ? 0 : tp / support;
      const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
      const metric = { class_id: c, class_name: this.#names[c]!, precision, recall, f1, support };
      perClass.push(metric);
      if (support > 0 || predicted > 0) present.push(metric);
    }
    const mean = (pick: (m: PerClassMetric) => number | null) =>
      present.length === 0 ? null : present.reduce((a, m) => a + pick(m)!, 0) / present.length;
    const accuracy = this.#count === 0 ? null : this.#top1 / this.#count;
    return {
      overall_metrics: {
        accuracy,
        top5_accuracy: this.#count === 0 ? null : this.#topK / this.#count,
        precision: mean((m) => m.precision),
        recall: mean((m) => m.recall),
        f1: mean((m) => m.f1),
        evaluated_images: this.#count,
      },
      per_class_metrics: perClass,
      confusion_matrix: this.#matrix.map((row) => [...row]),
      class_names: [...this.#names],
      primary_metric_name: 'accuracy',
      primary_metric_value: accuracy,
    };
  }
}
