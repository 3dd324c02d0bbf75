// Superpixels for LIME and SHAP: SLIC (Achanta et al., 2012) as scikit-image's `slic` defines it in
// spirit: k-means on (CIELAB colour, position) started on a regular grid, distance = colour
// distance + (compactness / step) x spatial distance, ten iterations, then connected components
// relabelled and fragments smaller than a quarter of the mean size merged into a neighbour. It is
// deterministic and linear in the pixels; lime_image's default quickshift is not used (it is
// quadratic in the kernel and its output depends on random tie-breaking noise). An image SLIC
// finds no regions in (noise) is cut into a grid instead.

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
  const seg = connected(assign, width, height, Math.max(1, Math.floor(n / k / 4)), k);
  // An image without regions (noise) gets a grid of about the segments asked for.
  return seg.count >= Math.max(2, Math.floor(segments / 2)) ? seg : grid(width, height, segments);
}

function grid(width: number, height: number, segments: number): Segmentation {
  const cols = Math.max(1, Math.round(Math.sqrt((segments * width) / height)));
  const rows = Math.max(1, Math.round(segments / cols));
  const labels = new Int32Array(width * height);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      labels[y * width + x] = Math.min(rows - 1, Math.floor((y * rows) / height)) * cols + Math.min(cols - 1, Math.floor((x * cols) / width));
  return { labels, count: rows * cols, width, height };
}

/**
 * Relabels connected regions 0..count-1 in scan order; a region under `minSize` pixels, or beyond
 * the `keep` largest, joins a neighbouring kept region (repeatedly, so that chains of fragments
 * reach one): noise cannot shatter an image into thousands of superpixels.
 */
function connected(assign: Int32Array, width: number, height: number, minSize: number, keep: number): Segmentation {
  const n = width * height;
  const comp = new Int32Array(n).fill(-1);
  const sizes: number[] = [];
  const stack = new Int32Array(n);
  for (let start = 0; start < n; start++) {
    if (comp[start] !== -1) continue;
    const id = sizes.length;
    let top = 0;
    let size = 0;
    comp[start] = id;
    stack[top++] = start;
    while (top > 0) {
      const i = stack[--top]!;
      size++;
      const x = i % width;
      for (let k = 0; k < 4; k++) {
        const j = k === 0 ? (x > 0 ? i - 1 : -1) : k === 1 ? (x < width - 1 ? i + 1 : -1) : k === 2 ? i - width : i + width;
        if (j < 0 || j >= n || comp[j] !== -1 || assign[j] !== assign[start]) continue;
        comp[j] = id;
        stack[top++] = j;
      }
    }
    sizes.push(size);
  }
  // Each small component points at a big one next to it, found through its pixels' neighbours.
  const kept = new Set(
    sizes
      .map((size, id) => [size, id] as const)
      .filter(([size]) => size >= minSize)
      .sort((a, b) => b[0] - a[0] || a[1] - b[1])
      .slice(0, Math.max(1, Math.round(keep * 1.5)))
      .map(([, id]) => id),
  );
  if (kept.size === 0) kept.add(sizes.indexOf(Math.max(...sizes)));
  const target = sizes.map((_, id) => (kept.has(id) ? id : -1));
  for (let changed = true; changed;) {
    changed = false;
    for (let i = 0; i < n; i++) {
      const c = comp[i]!;
      if (target[c]! !== -1) continue;
      const x = i % width;
      for (const j of [x > 0 ? i - 1 : -1, x < width - 1 ? i + 1 : -1, i - width, i + width]) {
        if (j < 0 || j >= n) continue;
        const t = target[comp[j]!]!;
        if (t !== -1) {
          target[c] = t;
          changed = true;
          break;
        }
      }
    }
  }
  const labels = new Int32Array(n);
  const renumber = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const c = comp[i]!;
    const root = target[c]! === -1 ? c : target[c]!;
    let label = renumber.get(root);
    if (label === undefined) {
      label = renumber.size;
      renumber.set(root, label);
    }
    labels[i] = label;
  }
  return { labels, count: renumber.size, width, height };
}
