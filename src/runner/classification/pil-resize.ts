// Pillow's resize of 8-bit images (libImaging/Resample.c), which torchvision's Resize runs on PIL
// images and so both `yolo val` for classification (classify_transforms, bilinear) and the
// torchvision/timm reference evaluations (bilinear or bicubic): a filter widened by the scale factor when
// shrinking (antialiasing), coefficients normalised per output pixel and turned into 22-bit
// fixed point, a horizontal pass into 8-bit rows, then a vertical pass, each rounded and clipped.
// Reproducing it bit for bit gives the network the same input as those tools, so top-1 and
// top-5 cannot differ from theirs by resampling. Pillow 13 runs the vertical pass first when the
// height shrinks more than twice as much as the width, which rounds differently: so does this.

const PRECISION_BITS = 32 - 8 - 2;
const ONE = 2 ** PRECISION_BITS;
const HALF = 2 ** (PRECISION_BITS - 1);

interface Coefficients {
  /** First input index per output index. */
  min: Int32Array;
  /** Number of input indices per output index. */
  count: Int32Array;
  /** ksize fixed-point weights per output index. */
  weights: Int32Array;
  ksize: number;
}

export type PilFilter = 'bilinear' | 'bicubic';

const FILTERS: Record<PilFilter, { support: number; at: (x: number) => number }> = {
  bilinear: { support: 1, at: (x) => (x < 1 ? 1 - x : 0) },
  // a = -0.5, as Pillow.
  bicubic: { support: 2, at: (x) => (x < 1 ? (1.5 * x - 2.5) * x * x + 1 : x < 2 ? (((x - 5) * x + 8) * x - 4) * -0.5 : 0) },
};

/** precompute_coeffs + normalize_coeffs_8bpc. */
function coefficients(inSize: number, outSize: number, filter: PilFilter): Coefficients {
  const f = FILTERS[filter];
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = f.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const min = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  const ss = 1 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    // (int) truncates toward zero.
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = f.at(Math.abs((x + xmin - center + 0.5) * ss));
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < ksize; x++) {
      const v = x < xmax && ww !== 0 ? k[x]! / ww : x < xmax ? k[x]! : 0;
      weights[xx * ksize + x] = v < 0 ? Math.trunc(-0.5 + v * ONE) : Math.trunc(0.5 + v * ONE);
    }
    min[xx] = xmin;
    count[xx] = xmax;
  }
  return { min, count, weights, ksize };
}

/** clip8: the rounded fixed-point sum back to 0..255 (the sum fits in int32, as in Pillow's C). */
function clip8(ss: number): number {
  const v = ss >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/**
 * The common case, three channels, with the sums in locals (the generic loops do the same
 * arithmetic): `n` taps `step` bytes apart from `p`, weighted by weights[kBase...], into out[o..o+2].
 */
function taps3(data: Uint8Array, weights: Int32Array, kBase: number, n: number, p: number, step: number, out: Uint8Array, o: number): void {
  let s0 = HALF;
  let s1 = HALF;
  let s2 = HALF;
  for (let t = 0; t < n; t++, p += step) {
    const w = weights[kBase + t]!;
    s0 += data[p]! * w;
    s1 += data[p + 1]! * w;
    s2 += data[p + 2]! * w;
  }
  out[o] = clip8(s0);
  out[o + 1] = clip8(s1);
  out[o + 2] = clip8(s2);
}

interface Plane {
  data: Uint8Array;
  width: number;
  height: number;
}

/**
 * ImagingResampleHorizontal_8bpc for output columns [x0, x0 + outWidth) over rows
 * [first, first + rows) of `src`, whose column 0 is input column `colShift`.
 */
function horizontal(src: Plane, k: Coefficients, x0: number, outWidth: number, first: number, rows: number, colShift: number, channels: number): Plane {
  const out = new Uint8Array(outWidth * rows * channels);
  const data = src.data;
  const weights = k.weights;
  for (let y = 0; y < rows; y++) {
    const rowIn = (first + y) * src.width * channels;
    for (let xx = 0; xx < outWidth; xx++) {
      const xmin = k.min[x0 + xx]! - colShift;
      const n = k.count[x0 + xx]!;
      const kBase = (x0 + xx) * k.ksize;
      const o = (y * outWidth + xx) * channels;
      if (channels === 3) {
        taps3(data, weights, kBase, n, rowIn + xmin * 3, 3, out, o);
        continue;
      }
      for (let c = 0; c < channels; c++) {
        let ss = HALF;
        for (let x = 0; x < n; x++) ss += data[rowIn + (xmin + x) * channels + c]! * weights[kBase + x]!;
        out[o + c] = clip8(ss);
      }
    }
  }
  return { data: out, width: outWidth, height: rows };
}

/**
 * ImagingResampleVertical_8bpc for output rows [y0, y0 + outHeight) and input columns
 * [x0, x0 + width) of `src`, whose row 0 is input row `rowShift`.
 */
function vertical(src: Plane, k: Coefficients, y0: number, outHeight: number, rowShift: number, x0: number, width: number, channels: number): Plane {
  const out = new Uint8Array(width * outHeight * channels);
  const data = src.data;
  const weights = k.weights;
  const stride = src.width * channels;
  for (let yy = 0; yy < outHeight; yy++) {
    const ymin = k.min[y0 + yy]! - rowShift;
    const n = k.count[y0 + yy]!;
    const kBase = (y0 + yy) * k.ksize;
    for (let xx = 0; xx < width; xx++) {
      const o = (yy * width + xx) * channels;
      const col = (x0 + xx) * channels;
      if (channels === 3) {
        taps3(data, weights, kBase, n, ymin * stride + col, stride, out, o);
        continue;
      }
      for (let c = 0; c < channels; c++) {
        let ss = HALF;
        for (let y = 0; y < n; y++) ss += data[(ymin + y) * stride + col + c]! * weights[kBase + y]!;
        out[o + c] = clip8(ss);
      }
    }
  }
  return { data: out, width, height: outHeight };
}

/** The window [left, left + width) x [top, top + height) of a plane, copied. */
function windowOf(im: Plane, crop: { left: number; top: number; width: number; height: number }, channels: number): Uint8Array {
  const out = new Uint8Array(crop.width * crop.height * channels);
  for (let y = 0; y < crop.height; y++) {
    const from = ((crop.top + y) * im.width + crop.left) * channels;
    out.set(im.data.subarray(from, from + crop.width * channels), y * crop.width * channels);
  }
  return out;
}

/**
 * Resizes `src` (HWC, `channels` bytes per pixel) from width x height to outWidth x outHeight as
 * Pillow's Image.resize(..., BILINEAR or BICUBIC) does (ImagingResampleInner), and returns the
 * window [left, left + cropWidth) x [top, top + cropHeight) of the result (all of it by default).
 * Only the window's pixels are computed (each output pixel depends on its own row and column
 * coefficients alone, so this is the whole resize's window, byte for byte), and of the first
 * pass only the rows or columns the second reads.
 */
export function pilResize(
  src: Uint8Array,
  width: number,
  height: number,
  channels: number,
  outWidth: number,
  outHeight: number,
  crop: { left: number; top: number; width: number; height: number } = { left: 0, top: 0, width: outWidth, height: outHeight },
  filter: PilFilter = 'bilinear',
): Uint8Array {
  const needHorizontal = outWidth !== width;
  const needVertical = outHeight !== height;
  const horizontalFirst = !(height - outHeight > 0 && height - outHeight > (width - outWidth) * 2);
  const { left, top } = crop;
  const source: Plane = { data: src, width, height };
  if (!needHorizontal && !needVertical) return windowOf(source, crop, channels);
  if (horizontalFirst) {
    const v = needVertical ? coefficients(height, outHeight, filter) : undefined;
    // The input rows the vertical pass reads for the window's rows (the window's rows without one).
    const first = v ? v.min[top]! : top;
    const last = v ? v.min[top + crop.height - 1]! + v.count[top + crop.height - 1]! : top + crop.height;
    if (!needHorizontal) return vertical(source, v!, top, crop.height, 0, left, crop.width, channels).data;
    const rows = horizontal(source, coefficients(width, outWidth, filter), left, crop.width, first, last - first, 0, channels);
    return v ? vertical(rows, v, top, crop.height, first, 0, crop.width, channels).data : rows.data;
  }
  // The height shrinks most: the vertical pass first, over the input columns the horizontal one reads.
  const h = needHorizontal ? coefficients(width, outWidth, filter) : undefined;
  const firstColumn = h ? h.min[left]! : left;
  const lastColumn = h ? h.min[left + crop.width - 1]! + h.count[left + crop.width - 1]! : left + crop.width;
  const columns = vertical(source, coefficients(height, outHeight, filter), top, crop.height, 0, firstColumn, lastColumn - firstColumn, channels);
  return h ? horizontal(columns, h, left, crop.width, 0, crop.height, firstColumn, channels).data : columns.data;
}
