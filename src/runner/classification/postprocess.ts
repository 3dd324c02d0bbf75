// Turns a batch of classifier outputs into ranked class scores.
import type { ClassScore } from '../../contract/index.ts';

/**
 * Ultralytics and most exports already end in Softmax; raw logits are normalized here. A row
 * counts as probabilities when every value is in [0,1] and the row sums to 1 within 1e-3.
 */
export function toProbabilities(row: Float32Array): Float32Array {
  let sum = 0;
  let inRange = true;
  for (const v of row) {
    sum += v;
    if (v < 0 || v > 1) inRange = false;
  }
  if (inRange && Math.abs(sum - 1) < 1e-3) return row;
  let max = -Infinity;
  for (const v of row) max = Math.max(max, v);
  const out = new Float32Array(row.length);
  let total = 0;
  for (let i = 0; i < row.length; i++) total += out[i] = Math.exp(row[i]! - max);
  for (let i = 0; i < row.length; i++) out[i]! /= total;
  return out;
}

/** The k best classes, best first; ties keep the lower class id first (as argmax does). */
export function topK(probs: Float32Array, k: number, classNames: readonly string[]): ClassScore[] {
  return bestIds(probs, Math.min(k, probs.length)).map((id) => ({
    class_id: id,
    class_name: classNames[id] ?? `class_${id}`,
    confidence: Math.min(1, Math.max(0, probs[id]!)),
  }));
}

/**
 * Ids of the k largest values, largest first, ties by lower id. A few: one pass keeping them in
 * order (sorting a thousand ids per image was most of the ranking's time); many: a sort.
 */
function bestIds(values: Float32Array, k: number): number[] {
  if (k > 32)
    return Array.from(values.keys())
      .sort((a, b) => values[b]! - values[a]! || a - b)
      .slice(0, k);
  const best: number[] = [];
  for (let id = 0; id < values.length; id++) {
    const v = values[id]!;
    // Strictly greater: an equal value met later has the higher id and stays behind.
    if (best.length === k && !(v > values[best[k - 1]!]!)) continue;
    let at = best.length < k ? best.length : k - 1;
    while (at > 0 && v > values[best[at - 1]!]!) {
      best[at] = best[at - 1]!;
      at--;
    }
    best[at] = id;
  }
  return best;
}
