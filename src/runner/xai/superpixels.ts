// Superpixels for LIME and SHAP: SLIC (Achanta et al., 2012) as scikit-image's `slic` defines it in
// spirit: k-means on (CIELAB colour, position) started on a regular grid, distance = colour
// distance + (compactness / step) x spatial distance, ten iterations, then connected components
// relabelled and fragments smaller than a quarter of the mean size merged into a neighbour. It is
// deterministic and linear in the pixels; lime_image's default quickshift is not used (it is
// quadratic in the kernel and its output depends on random tie-breaking noise).

export interface Segmentation {
  /** Segment id per pixel, row-major, 0..count-1. */
  labels: Int32Array;
  count: number;
  width: number;
  height: number;
}

/** sRGB (0..255) to CIELAB (D65), as skimage.color.rgb2lab. */
function toLab(r: number, g: number, b: number): [number, number, number] {
  const lin = (c: number) => {
    const v = c / 255;
    return v > 0.04045 ? ((v + 0.055) / 1.055) ** 2.4 : v / 12.92;
  };
  const [R, G, B] = [lin(r), lin(g), lin(b)];
  const x = (0.412453 * R + 0.35758 * G + 0.180423 * B) / 0.95047;
  const y = 0.212671 * R + 0.71516 * G + 0.072169 * B;
  const z = (0.019334 * R + 0.119193 * G + 0.950227 * B) / 1.08883;
  const f = (t: number) => (t > 0.008856 ? Math.cbrt(t) : 7.787 * t + 16 / 116);
  const [fx, fy, fz] = [f(x), f(y), f(z)];
  return [116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)];
}

/** SLIC superpixels of an RGB image (HWC bytes). */
export function slic(
  rgb: Uint8Array,
  width: number,
  height: number,
  opts: { segments?: number; compactness?: number; iterations?: number } = {},
): Segmentation {
  const n = width * height;
  const segments = Math.max(1, Math.min(opts.segments ?? 50, n));
  const compactness = opts.compactness ?? 10;
  const lab = new Float64Array(n * 3);
  for (let i = 0; i < n; i++) lab.set(toLab(rgb[i * 3]!, rgb[i * 3 + 1]!, rgb[i * 3 + 2]!), i * 3);
  const step = Math.sqrt(n / segments);
  // Grid centres: (l, a, b, x, y).
  const centres: number[][] = [];
  for (let y = step / 2; y < height; y += step)
    for (let x = step / 2; x < width; x += step) {
      const i = Math.min(Math.floor(y), height - 1) * width + Math.min(Math.floor(x), width - 1);
      centres.push([lab[i * 3]!, lab[i * 3 + 1]!, lab[i * 3 + 2]!, x, y]);
    }
  const k = centres.length;
  const assign = new Int32Array(n).fill(-1);
  const dist = new Float64Array(n);
  const spatial = compactness / step;
  for (let iter = 0; iter < (opts.iterations ?? 10); iter++) {
    dist.fill(Infinity);
    for (let c = 0; c < k; c++) {
      const [cl, ca, cb, cx, cy] = centres[c]!;
      const x0 = Math.max(0, Math.floor(cx! - 2 * step));
      const x1 = Math.min(width, Math.ceil(cx! + 2 * step));
      const y0 = Math.max(0, Math.floor(cy! - 2 * step));
      const y1 = Math.min(height, Math.ceil(cy! + 2 * step));
      for (let y = y0; y < y1; y++)
        for (let x = x0; x < x1; x++) {
          const i = y * width + x;
          const dl = lab[i * 3]! - cl!;
          const da = lab[i * 3 + 1]! - ca!;
          const db = lab[i * 3 + 2]! - cb!;
          const dx = x - cx!;
          const dy = y - cy!;
          const d = dl * dl + da * da + db * db + spatial * spatial * (dx * dx + dy * dy);
          if (d < dist[i]!) {
            dist[i] = d;
            assign[i] = c;
          }
        }
    }
    const sums = Array.from({ length: k }, () => [0, 0, 0, 0, 0, 0]);
    for (let i = 0; i < n; i++) {
      const s = sums[assign[i]!]!;
      s[0]! += lab[i * 3]!;
      s[1]! += lab[i * 3 + 1]!;
      s[2]! += lab[i * 3 + 2]!;
      s[3]! += i % width;
      s[4]! += Math.floor(i / width);
      s[5]!++;
    }
    for (let c = 0; c < k; c++) {
      const s = sums[c]!;
      if (s[5]! > 0) centres[c] = [s[0]! / s[5]!, s[1]! / s[5]!, s[2]! / s[5]!, s[3]! / s[5]!, s[4]! / s[5]!];
    }
  }
  return connected(assign, width, height, Math.max(1, Math.floor(n / k / 4)));
}

/** Relabels connected regions 0..count-1 in scan order; regions under `minSize` join the region before them. */
function connected(assign: Int32Array, width: number, height: number, minSize: number): Segmentation {
  const n = width * height;
  const labels = new Int32Array(n).fill(-1);
  let count = 0;
  const stack: number[] = [];
  for (let start = 0; start < n; start++) {
    if (labels[start] !== -1) continue;
    // The neighbouring region already labelled (left or above), for merging a fragment.
    const x = start % width;
    const previous = x > 0 ? labels[start - 1]! : start >= width ? labels[start - width]! : -1;
    const members: number[] = [];
    labels[start] = count;
    stack.push(start);
    while (stack.length) {
      const i = stack.pop()!;
      members.push(i);
      const ix = i % width;
      for (const j of [ix > 0 ? i - 1 : -1, ix < width - 1 ? i + 1 : -1, i - width, i + width]) {
        if (j < 0 || j >= n || labels[j] !== -1 || assign[j] !== assign[start]) continue;
        labels[j] = count;
        stack.push(j);
      }
    }
    if (members.length < minSize && previous >= 0) for (const i of members) labels[i] = previous;
    else count++;
  }
  return { labels, count, width, height };
}
