// Perturbation explanations over superpixels: LIME (lime_image + LimeBase) and KernelSHAP (shap's
// KernelExplainer), sharing how an image is perturbed: a superpixel that is "off" takes its own
// mean colour (lime_image's hide_color=None), in the network's input tensor.
import type { Segmentation } from './superpixels.ts';

/** The input tensor (CHW) with the superpixels where `on[k]` is 0 filled with their mean. */
export function perturber(input: Float32Array, seg: Segmentation): (on: ArrayLike<number>) => Float32Array {
  const plane = seg.width * seg.height;
  const means = new Float64Array(seg.count * 3);
  const sizes = new Float64Array(seg.count);
  for (let i = 0; i < plane; i++) sizes[seg.labels[i]!]!++;
  for (let c = 0; c < 3; c++) for (let i = 0; i < plane; i++) means[seg.labels[i]! * 3 + c]! += input[c * plane + i]!;
  for (let k = 0; k < seg.count; k++) for (let c = 0; c < 3; c++) means[k * 3 + c]! /= sizes[k]! || 1;
  return (on) => {
    const out = input.slice();
    for (let c = 0; c < 3; c++)
      for (let i = 0; i < plane; i++) {
        const k = seg.labels[i]!;
        if (!on[k]) out[c * plane + i] = means[k * 3 + c]!;
      }
    return out;
  };
}

/** lime_image's samples: `n` rows of `m` coin flips, the first row all ones (the image itself). */
export function limeSamples(m: number, n: number, random: () => number): Uint8Array[] {
  return Array.from({ length: n }, (_, r) => Uint8Array.from({ length: m }, () => (r === 0 ? 1 : random() < 0.5 ? 1 : 0)));
}

export interface LimeFit {
  intercept: number;
  /** Per superpixel. */
  weights: number[];
  /** Weighted R^2 of the local model (LIME's `score`). */
  score: number;
  /** The local model's prediction for the image (LIME's `local_pred`). */
  localPrediction: number;
}

/** Solves the symmetric positive definite system A x = b (Cholesky). */
function solveSpd(a: Float64Array, b: Float64Array, n: number): Float64Array {
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j <= i; j++) {
      let s = a[i * n + j]!;
      for (let k = 0; k < j; k++) s -= l[i * n + k]! * l[j * n + k]!;
      l[i * n + j] = i === j ? Math.sqrt(s) : s / l[j * n + j]!;
    }
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = b[i]!;
    for (let k = 0; k < i; k++) s -= l[i * n + k]! * y[k]!;
    y[i] = s / l[i * n + i]!;
  }
  const x = new Float64Array(n);
  for (let i = n - 1; i >= 0; i--) {
    let s = y[i]!;
    for (let k = i + 1; k < n; k++) s -= l[k * n + i]! * x[k]!;
    x[i] = s / l[i * n + i]!;
  }
  return x;
}

/** sklearn's Ridge(alpha, fit_intercept=True).fit(X, y, sample_weight): weighted centring, then (X'WX + alpha I) b = X'Wy. */
export function weightedRidge(rows: ArrayLike<number>[], y: ArrayLike<number>, w: ArrayLike<number>, alpha: number): { coef: Float64Array; intercept: number } {
  const n = rows.length;
  const m = rows[0]!.length;
  let wsum = 0;
  for (let i = 0; i < n; i++) wsum += w[i]!;
  const xMean = new Float64Array(m);
  let yMean = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) xMean[j]! += w[i]! * rows[i]![j]!;
    yMean += w[i]! * y[i]!;
  }
  for (let j = 0; j < m; j++) xMean[j]! /= wsum;
  yMean /= wsum;
  const a = new Float64Array(m * m);
  const b = new Float64Array(m);
  const xc = new Float64Array(m);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) xc[j] = rows[i]![j]! - xMean[j]!;
    const yc = y[i]! - yMean;
    for (let j = 0; j < m; j++) {
      const wx = w[i]! * xc[j]!;
      b[j]! += wx * yc;
      for (let k = j; k < m; k++) a[j * m + k]! += wx * xc[k]!;
    }
  }
  for (let j = 0; j < m; j++) {
    for (let k = 0; k < j; k++) a[j * m + k] = a[k * m + j]!;
    a[j * m + j]! += alpha;
  }
  const coef = solveSpd(a, b, m);
  let dot = 0;
  for (let j = 0; j < m; j++) dot += xMean[j]! * coef[j]!;
  return { coef, intercept: yMean - dot };
}

/**
 * LimeBase.explain_instance_with_data as lime_image calls it: distances = cosine distance of each
 * sample to the first x 100, weights = sqrt(exp(-d^2 / 0.25^2)), every superpixel used
 * (lime_image asks for 100000 features, so 'auto' selection keeps them all), then
 * Ridge(alpha=1) weighted by them.
 */
export function limeFit(samples: Uint8Array[], labels: ArrayLike<number>, kernelWidth = 0.25): LimeFit {
  const m = samples[0]!.length;
  const weights = samples.map((s) => {
    let ones = 0;
    for (const v of s) ones += v;
    // sklearn's cosine distance to the all-ones row; a zero row has similarity 0.
    const d = (ones === 0 ? 1 : 1 - ones / Math.sqrt(ones * m)) * 100;
    return Math.sqrt(Math.exp(-(d * d) / (kernelWidth * kernelWidth)));
  });
  const { coef, intercept } = weightedRidge(samples, labels, weights, 1);
  const predict = (s: ArrayLike<number>) => {
    let v = intercept;
    for (let j = 0; j < m; j++) v += coef[j]! * s[j]!;
    return v;
  };
  let wsum = 0;
  let ymean = 0;
  samples.forEach((_, i) => {
    wsum += weights[i]!;
    ymean += weights[i]! * labels[i]!;
  });
  ymean /= wsum;
  let ssRes = 0;
  let ssTot = 0;
  samples.forEach((s, i) => {
    ssRes += weights[i]! * (labels[i]! - predict(s)) ** 2;
    ssTot += weights[i]! * (labels[i]! - ymean) ** 2;
  });
  return { intercept, weights: Array.from(coef), score: ssTot === 0 ? 1 : 1 - ssRes / ssTot, localPrediction: predict(samples[0]!) };
}

/** All 2^m coalitions (bit k = superpixel k on), in order of their number. */
export function allCoalitions(m: number): Uint8Array[] {
  return Array.from({ length: 2 ** m }, (_, c) => Uint8Array.from({ length: m }, (_, k) => (c >> k) & 1));
}

/**
 * Exact Shapley values from the values of every coalition (`value[c]`, c's bit k = player k):
 * what KernelSHAP converges to, and returns, when it enumerates every coalition.
 */
export function exactShapley(m: number, value: ArrayLike<number>): number[] {
  const fact = [1];
  for (let i = 1; i <= m; i++) fact.push(fact[i - 1]! * i);
  const phi = new Array<number>(m).fill(0);
  for (let c = 0; c < 2 ** m; c++) {
    let size = 0;
    for (let k = 0; k < m; k++) size += (c >> k) & 1;
    for (let k = 0; k < m; k++) {
      if ((c >> k) & 1) continue;
      const weight = (fact[size]! * fact[m - size - 1]!) / fact[m]!;
      phi[k]! += weight * (value[c | (1 << k)]! - value[c]!);
    }
  }
  return phi;
}

/**
 * KernelSHAP by sampling (for more superpixels than can be enumerated): coalition sizes drawn
 * from the Shapley kernel, each with its complement, then the weighted least squares whose
 * solution sums to f(all) - f(none), the last player eliminated as shap does.
 */
export function kernelShapSamples(m: number, n: number, random: () => number): Uint8Array[] {
  const sizes = Array.from({ length: m - 1 }, (_, i) => i + 1);
  const kernel = sizes.map((s) => (m - 1) / (s * (m - s)));
  const total = kernel.reduce((a, b) => a + b, 0);
  const out: Uint8Array[] = [];
  while (out.length < n) {
    let u = random() * total;
    let s = sizes[0]!;
    for (let i = 0; i < sizes.length; i++) {
      u -= kernel[i]!;
      if (u <= 0) {
        s = sizes[i]!;
        break;
      }
    }
    const order = Array.from({ length: m }, (_, i) => i);
    for (let i = m - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    const z = new Uint8Array(m);
    for (let i = 0; i < s; i++) z[order[i]!] = 1;
    out.push(
      z,
      Uint8Array.from(z, (v) => 1 - v),
    );
  }
  return out.slice(0, n);
}

export function kernelShapFit(samples: Uint8Array[], values: ArrayLike<number>, fNone: number, fAll: number): number[] {
  const m = samples[0]!.length;
  const delta = fAll - fNone;
  // phi_m = delta - sum(phi_1..m-1): regress y - z_m delta on (z_j - z_m), uniform weights (the kernel was the sampling law).
  const rows = samples.map((z) => Array.from({ length: m - 1 }, (_, j) => z[j]! - z[m - 1]!));
  const y = samples.map((z, i) => values[i]! - fNone - z[m - 1]! * delta);
  const xtx = new Float64Array((m - 1) * (m - 1));
  const xty = new Float64Array(m - 1);
  rows.forEach((r, i) => {
    for (let a = 0; a < m - 1; a++) {
      xty[a]! += r[a]! * y[i]!;
      for (let b = 0; b < m - 1; b++) xtx[a * (m - 1) + b]! += r[a]! * r[b]!;
    }
  });
  for (let a = 0; a < m - 1; a++) xtx[a * (m - 1) + a]! += 1e-9;
  const head = solveSpd(xtx, xty, m - 1);
  const phi = Array.from(head);
  phi.push(delta - phi.reduce((a, b) => a + b, 0));
  return phi;
}
