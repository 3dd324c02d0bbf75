// Class activation maps as pytorch-grad-cam 1.5 computes them (base_cam.py and the method
// classes), for one image and one target layer: the method's per-channel weights (or elementwise
// product), the weighted sum over channels, ReLU, scale_cam_image (min to 0, divide by
// 1e-7 + max, cv2.resize to the input's width and height), then aggregate_multi_layers' ReLU and a
// second scale_cam_image. Activations and gradients are [C, h, w] float32, channel-major.

export interface FeatureMap {
  data: Float32Array;
  channels: number;
  height: number;
  width: number;
}

/** GradCAM: the gradients' mean over the map, per channel. */
export function gradcamWeights(grads: FeatureMap): Float64Array {
  const { channels, height, width, data } = grads;
  const plane = height * width;
  const w = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    let s = 0;
    for (let i = 0; i < plane; i++) s += data[c * plane + i]!;
    w[c] = s / plane;
  }
  return w;
}

/**
 * GradCAM++ (GradCAMPlusPlus.get_cam_weights): aij = g^2 / (2 g^2 + sum(A) g^3 + 1e-6), zero where
 * g is 0; weights = sum over the map of max(g, 0) * aij.
 */
export function gradcamppWeights(grads: FeatureMap, activations: FeatureMap): Float64Array {
  const { channels, height, width } = grads;
  const plane = height * width;
  const w = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    let sumA = 0;
    for (let i = 0; i < plane; i++) sumA += activations.data[c * plane + i]!;
    let s = 0;
    for (let i = 0; i < plane; i++) {
      const g = grads.data[c * plane + i]!;
      if (g === 0) continue;
      const g2 = g * g;
      const aij = g2 / (2 * g2 + sumA * g2 * g + 1e-6);
      s += Math.max(g, 0) * aij;
    }
    w[c] = s;
  }
  return w;
}

/** sum_c weights[c] * A[c]: the CAM before ReLU. */
export function weightedSum(weights: ArrayLike<number>, activations: FeatureMap): Float64Array {
  const plane = activations.height * activations.width;
  const cam = new Float64Array(plane);
  for (let c = 0; c < activations.channels; c++) {
    const w = weights[c]!;
    if (w === 0) continue;
    for (let i = 0; i < plane; i++) cam[i]! += w * activations.data[c * plane + i]!;
  }
  return cam;
}

/** HiResCAM: sum_c grads[c] * A[c], elementwise. */
export function hirescam(grads: FeatureMap, activations: FeatureMap): Float64Array {
  const plane = activations.height * activations.width;
  const cam = new Float64Array(plane);
  for (let c = 0; c < activations.channels; c++) for (let i = 0; i < plane; i++) cam[i]! += grads.data[c * plane + i]! * activations.data[c * plane + i]!;
  return cam;
}

/**
 * EigenCAM: the activations (h*w rows of C values, centred per channel) projected on their first
 * principal direction. The SVD leaves the direction's sign arbitrary (LAPACK picks one); it is
 * fixed here as pytorch-grad-cam's get_2d_projection_with_sign_correction does (Seg-Eigen-CAM,
 * Eq. 13): the projection is negated when its most negative value outweighs its most positive.
 */
export function eigenProjection(a: FeatureMap): Float64Array {
  const { channels: C, height, width, data } = a;
  const n = height * width;
  // M: n x C, centred columns.
  const m = new Float64Array(n * C);
  for (let c = 0; c < C; c++) {
    let mean = 0;
    for (let i = 0; i < n; i++) mean += data[c * n + i]!;
    mean /= n;
    for (let i = 0; i < n; i++) m[i * C + c] = data[c * n + i]! - mean;
  }
  // The projection M v1 = s1 u1: the top eigenvector of the smaller of M M^T (n x n) and M^T M (C x C).
  let projection: Float64Array;
  if (n <= C) {
    const gram = new Float64Array(n * n);
    for (let i = 0; i < n; i++)
      for (let j = i; j < n; j++) {
        let s = 0;
        for (let c = 0; c < C; c++) s += m[i * C + c]! * m[j * C + c]!;
        gram[i * n + j] = s;
        gram[j * n + i] = s;
      }
    const { vector, value } = topEigen(gram, n);
    const sigma = Math.sqrt(Math.max(value, 0));
    projection = vector.map((v) => v * sigma);
  } else {
    const cov = new Float64Array(C * C);
    for (let i = 0; i < n; i++)
      for (let c = 0; c < C; c++) {
        const v = m[i * C + c]!;
        if (v === 0) continue;
        for (let d = c; d < C; d++) cov[c * C + d]! += v * m[i * C + d]!;
      }
    for (let c = 0; c < C; c++) for (let d = 0; d < c; d++) cov[c * C + d] = cov[d * C + c]!;
    const { vector } = topEigen(cov, C);
    projection = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let c = 0; c < C; c++) s += m[i * C + c]! * vector[c]!;
      projection[i] = s;
    }
  }
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of projection) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (Math.abs(lo) > Math.abs(hi)) for (let i = 0; i < n; i++) projection[i] = -projection[i]!;
  return projection;
}

/** The dominant eigenpair of a symmetric positive semi-definite matrix (power iteration, to double precision). */
function topEigen(a: Float64Array, n: number): { vector: Float64Array; value: number } {
  let v = new Float64Array(n);
  // A start that no real eigenvector is orthogonal to in practice.
  for (let i = 0; i < n; i++) v[i] = 1 + ((i * 7919) % 13) / 13;
  let value = 0;
  for (let iter = 0; iter < 5000; iter++) {
    const w = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < n; j++) s += a[i * n + j]! * v[j]!;
      w[i] = s;
    }
    let norm = 0;
    for (const x of w) norm += x * x;
    norm = Math.sqrt(norm);
    if (norm === 0) return { vector: v, value: 0 };
    let delta = 0;
    for (let i = 0; i < n; i++) {
      const x = w[i]! / norm;
      delta = Math.max(delta, Math.abs(x - v[i]!));
      w[i] = x;
    }
    v = w;
    value = norm;
    if (delta < 1e-13) break;
  }
  return { vector: v, value };
}

/**
 * cv2.resize(img, (width, height)) with INTER_LINEAR on a float32 map: half-pixel centres, source
 * indices clamped to the image (its border handling), weights in float32.
 */
export function cvResizeLinear(src: ArrayLike<number>, sw: number, sh: number, dw: number, dh: number): Float32Array {
  const axis = (ssize: number, dsize: number) => {
    const scale = ssize / dsize;
    const i0 = new Int32Array(dsize);
    const i1 = new Int32Array(dsize);
    const f = new Float32Array(dsize);
    for (let d = 0; d < dsize; d++) {
      let fx = Math.fround((d + 0.5) * scale - 0.5);
      let sx = Math.floor(fx);
      fx = Math.fround(fx - sx);
      if (sx < 0) {
        fx = 0;
        sx = 0;
      }
      if (sx >= ssize - 1) {
        fx = 0;
        sx = ssize - 1;
      }
      i0[d] = sx;
      i1[d] = Math.min(sx + 1, ssize - 1);
      f[d] = fx;
    }
    return { i0, i1, f };
  };
  const xs = axis(sw, dw);
  const ys = axis(sh, dh);
  const out = new Float32Array(dw * dh);
  for (let y = 0; y < dh; y++) {
    const fy = ys.f[y]!;
    const r0 = ys.i0[y]! * sw;
    const r1 = ys.i1[y]! * sw;
    for (let x = 0; x < dw; x++) {
      const fx = xs.f[x]!;
      const top = (1 - fx) * src[r0 + xs.i0[x]!]! + fx * src[r0 + xs.i1[x]!]!;
      const bottom = (1 - fx) * src[r1 + xs.i0[x]!]! + fx * src[r1 + xs.i1[x]!]!;
      out[y * dw + x] = (1 - fy) * top + fy * bottom;
    }
  }
  return out;
}

/** scale_cam_image for one map: min to 0, divided by 1e-7 + max, then resized when a size is given. */
export function scaleCam(cam: ArrayLike<number>, width: number, height: number, target?: { width: number; height: number }): Float32Array {
  const n = cam.length;
  let lo = Infinity;
  for (let i = 0; i < n; i++) if (cam[i]! < lo) lo = cam[i]!;
  let hi = -Infinity;
  for (let i = 0; i < n; i++) if (cam[i]! - lo > hi) hi = cam[i]! - lo;
  const scaled = new Float32Array(n);
  const d = 1e-7 + hi;
  for (let i = 0; i < n; i++) scaled[i] = (cam[i]! - lo) / d;
  return target ? cvResizeLinear(scaled, width, height, target.width, target.height) : scaled;
}

/**
 * The whole of BaseCAM for one target layer: ReLU of the raw CAM, scale_cam_image to the input
 * size, then aggregate_multi_layers (ReLU, mean over the one layer, scale_cam_image again).
 */
export function finishCam(raw: ArrayLike<number>, width: number, height: number, input: { width: number; height: number }): Float32Array {
  const relu = new Float32Array(raw.length);
  for (let i = 0; i < raw.length; i++) relu[i] = raw[i]! > 0 ? raw[i]! : 0;
  const resized = scaleCam(relu, width, height, input);
  for (let i = 0; i < resized.length; i++) if (resized[i]! < 0) resized[i] = 0;
  return scaleCam(resized, input.width, input.height);
}

/** torch.nn.UpsamplingBilinear2d (align_corners=True) of one map, as ScoreCAM upsamples activations. */
export function upsampleAlignCorners(src: ArrayLike<number>, sw: number, sh: number, dw: number, dh: number): Float32Array {
  const out = new Float32Array(dw * dh);
  const rx = dw > 1 ? (sw - 1) / (dw - 1) : 0;
  const ry = dh > 1 ? (sh - 1) / (dh - 1) : 0;
  for (let y = 0; y < dh; y++) {
    const fy = y * ry;
    const y0 = Math.min(Math.floor(fy), sh - 1);
    const y1 = Math.min(y0 + 1, sh - 1);
    const ly = fy - y0;
    for (let x = 0; x < dw; x++) {
      const fx = x * rx;
      const x0 = Math.min(Math.floor(fx), sw - 1);
      const x1 = Math.min(x0 + 1, sw - 1);
      const lx = fx - x0;
      out[y * dw + x] = (1 - ly) * ((1 - lx) * src[y0 * sw + x0]! + lx * src[y0 * sw + x1]!) + ly * ((1 - lx) * src[y1 * sw + x0]! + lx * src[y1 * sw + x1]!);
    }
  }
  return out;
}
