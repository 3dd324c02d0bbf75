import { ClassificationMetrics } from '../../src/runner/classification/metrics.ts';
import { referenceMetrics } from '../support/reference-metrics.ts';

/** Feeds (true, predicted) pairs; the rest of the ranking is the other classes in id order. */
function accumulate(names: string[], yTrue: number[], yPred: number[]) {
  const m = new ClassificationMetrics(names);
  yTrue.forEach((t, i) => m.add(t, [yPred[i]!, ...names.map((_, c) => c).filter((c) => c !== yPred[i])]));
  return m.result();
}

describe('classification metrics', () => {
  // The example in scikit-learn's precision_score / recall_score / f1_score documentation:
  // macro precision 0.22..., recall 0.33..., f1 0.26... (exactly 2/9, 1/3, 4/15).
  const yTrue = [0, 1, 2, 0, 1, 2];
  const yPred = [0, 2, 1, 0, 0, 1];

  it('matches scikit-learn documented macro averages', () => {
    const r = accumulate(['a', 'b', 'c'], yTrue, yPred);
    expect(r.overall_metrics.precision).toBeCloseTo(2 / 9, 12);
    expect(r.overall_metrics.recall).toBeCloseTo(1 / 3, 12);
    expect(r.overall_metrics.f1).toBeCloseTo(4 / 15, 12);
    expect(r.overall_metrics.accuracy).toBeCloseTo(2 / 6, 12);
    expect(r.confusion_matrix).toEqual([
      [2, 0, 0],
      [1, 0, 1],
      [0, 2, 0],
    ]);
    expect(r.per_class_metrics.map((c) => c.support)).toEqual([2, 2, 2]);
    expect(r.primary_metric_name).toBe('accuracy');
  });

  it('leaves a class absent from both truth and predictions out of the macro average (sklearn unique_labels)', () => {
    const r = accumulate(['a', 'b', 'c', 'never'], yTrue, yPred);
    expect(r.overall_metrics.precision).toBeCloseTo(2 / 9, 12);
    expect(r.per_class_metrics[3]).toEqual({ class_id: 3, class_name: 'never', precision: 0, recall: 0, f1: 0, support: 0 });
  });

  it('counts a class that is only predicted (precision 0 with zero_division=0, in the average)', () => {
    const t = [0, 0, 1, 1];
    const p = [0, 2, 1, 1];
    const r = accumulate(['a', 'b', 'c'], t, p);
    const ref = referenceMetrics(t, p, 3);
    expect(r.overall_metrics.precision).toBeCloseTo(ref.precision, 12);
    expect(r.overall_metrics.recall).toBeCloseTo(ref.recall, 12);
    expect(r.overall_metrics.f1).toBeCloseTo(ref.f1, 12);
    // By hand: precision [1, 1, 0] -> 2/3; recall [0.5, 1, 0] -> 0.5.
    expect(r.overall_metrics.precision).toBeCloseTo(2 / 3, 12);
    expect(r.overall_metrics.recall).toBeCloseTo(0.5, 12);
  });

  it('computes top-5 from the ranking, capped at the number of classes', () => {
    const names = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
    const m = new ClassificationMetrics(names);
    m.add(0, [1, 2, 3, 4, 0, 5, 6]); // true class 5th: a top-5 hit, a top-1 miss
    m.add(0, [1, 2, 3, 4, 5, 0, 6]); // 6th: a miss
    m.add(2, [2, 0, 1, 3, 4, 5, 6]);
    const r = m.result();
    expect(r.overall_metrics.top5_accuracy).toBeCloseTo(2 / 3, 12);
    expect(r.overall_metrics.accuracy).toBeCloseTo(1 / 3, 12);
    const small = new ClassificationMetrics(['x', 'y']);
    small.add(0, [1, 0]);
    expect(small.result().overall_metrics.top5_accuracy).toBe(1);
  });

  it('reports null metrics, not NaN, when nothing was evaluated', () => {
    const r = new ClassificationMetrics(['a', 'b']).result();
    expect(r.overall_metrics.accuracy).toBeNull();
    expect(r.primary_metric_value).toBeNull();
  });
});

describe('a model with more classes than the dataset', () => {
  // Model classes 0..5; the dataset has folders for 1, 3 and 4 only. Predictions 0 and 5 fall
  // outside it. Expected: scikit-learn's report over unique_labels(y_true, y_pred) plus the
  // dataset's classes, computed by the naive reference on the remapped labels.
  const names = ['n0', 'n1', 'n2', 'n3', 'n4', 'n5'];
  const yTrue = [1, 1, 3, 3, 4, 4, 4];
  const yPred = [1, 0, 3, 5, 4, 4, 0];

  it('reports the dataset classes and every class predicted, errors in their own columns', () => {
    const m = new ClassificationMetrics(names, [1, 3, 4]);
    yTrue.forEach((t, i) => m.add(t, [yPred[i]!, ...names.map((_, c) => c).filter((c) => c !== yPred[i])]));
    const r = m.result();
    const labels = [0, 1, 3, 4, 5];
    const ref = referenceMetrics(
      yTrue.map((t) => labels.indexOf(t)),
      yPred.map((p) => labels.indexOf(p)),
      labels.length,
    );
    expect(r.class_names).toEqual(['n0', 'n1', 'n3', 'n4', 'n5']);
    expect(r.confusion_matrix).toEqual(ref.confusion);
    expect(r.per_class_metrics.map((c) => c.class_id)).toEqual(labels);
    expect(r.overall_metrics.precision).toBeCloseTo(ref.precision, 12);
    expect(r.overall_metrics.recall).toBeCloseTo(ref.recall, 12);
    expect(r.overall_metrics.f1).toBeCloseTo(ref.f1, 12);
    expect(r.overall_metrics.accuracy).toBeCloseTo(4 / 7, 12);
    expect(r.per_class_metrics.every((c) => Number.isFinite(c.support))).toBe(true);
  });
});
