// A deliberately naive re-implementation of scikit-learn's classification metrics, from their
// definitions, used as the independent expectation for the runner's streaming metrics.
export interface Reference {
  accuracy: number;
  precision: number;
  recall: number;
  f1: number;
  perClass: Array<{ precision: number; recall: number; f1: number; support: number }>;
  confusion: number[][];
}

export function referenceMetrics(yTrue: number[], yPred: number[], numClasses: number): Reference {
  const confusion = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  yTrue.forEach((t, i) => confusion[t]![yPred[i]!]!++);
  const perClass: Reference['perClass'] = [];
  for (let c = 0; c < numClasses; c++) {
    const tp = yTrue.filter((t, i) => t === c && yPred[i] === c).length;
    const fp = yTrue.filter((t, i) => t !== c && yPred[i] === c).length;
    const fn = yTrue.filter((t, i) => t === c && yPred[i] !== c).length;
    const precision = tp + fp === 0 ? 0 : tp / (tp + fp);
    const recall = tp + fn === 0 ? 0 : tp / (tp + fn);
    const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
    perClass.push({ precision, recall, f1, support: tp + fn });
  }
  // sklearn: macro average over unique_labels(y_true, y_pred).
  const labels = [...new Set([...yTrue, ...yPred])];
  const avg = (k: 'precision' | 'recall' | 'f1') => labels.reduce((a, c) => a + perClass[c]![k], 0) / labels.length;
  return {
    accuracy: yTrue.filter((t, i) => t === yPred[i]).length / yTrue.length,
    precision: avg('precision'),
    recall: avg('recall'),
    f1: avg('f1'),
    perClass,
    confusion,
  };
}
