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

/** clip8: the rounded fixed-point sum back to 0..255. */
function clip8(ss: number): number {
  const v = Math.floor(ss / ONE);
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

interface Plane {
  data: Uint8Array;
  width: number;
  height: number;
}

/** ImagingResampleHorizontal_8bpc over rows [first, first + rows) of `src`. */
function horizontal(src: Plane, k: Coefficients, outWidth: number, first: number, rows: number, channels: number): Plane {
  const out = new Uint8Array(outWidth * rows * channels);
  const acc = new Float64Array(channels);
  for (let y = 0; y < rows; y++) {
    const rowIn = (first + y) * src.width * channels;
    for (let xx = 0; xx < outWidth; xx++) {
      const xmin = k.min[xx]!;
      const n = k.count[xx]!;
      const kBase = xx * k.ksize;
      acc.fill(HALF);
      for (let x = 0; x < n; x++) {
        const w = k.weights[kBase + x]!;
        const p = rowIn + (xmin + x) * channels;
        for (let c = 0; c < channels; c++) acc[c]! += src.data[p + c]! * w;
      }
      const o = (y * outWidth + xx) * channels;
      for (let c = 0; c < channels; c++) out[o + c] = clip8(acc[c]!);
    }
  }
  return { data: out, width: outWidth, height: rows };
}

/** ImagingResampleVertical_8bpc; `shift` is subtracted from the row bounds (rows already skipped). */
function vertical(src: Plane, k: Coefficients, outHeight: number, shift: number, channels: number): Plane {
  const out = new Uint8Array(src.width * outHeight * channels);
  const acc = new Float64Array(channels);
  for (let yy = 0; yy < outHeight; yy++) {
    const ymin = k.min[yy]! - shift;
    const n = k.count[yy]!;
    const kBase = yy * k.ksize;
    for (let xx = 0; xx < src.width; xx++) {
      acc.fill(HALF);
      for (let y = 0; y < n; y++) {
        const w = k.weights[kBase + y]!;
        const p = ((ymin + y) * src.width + xx) * channels;
        for (let c = 0; c < channels; c++) acc[c]! += src.data[p + c]! * w;
      }
      const o = (yy * src.width + xx) * channels;
      for (let c = 0; c < channels; c++) out[o + c] = clip8(acc[c]!);
    }
  }
  return { data: out, width: src.width, height: outHeight };
}

/**
 * Resizes `src` (HWC, `channels` bytes per pixel) from width x height to outWidth x outHeight as
 * Pillow's Image.resize(..., BILINEAR or BICUBIC) does (ImagingResampleInner), and returns the
 * window [left, left + cropWidth) x [top, top + cropHeight) of the result (all of it by default).
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
  let im: Plane = { data: src, width, height };
  if (horizontalFirst) {
    const v = coefficients(height, outHeight, filter);
    if (needHorizontal) {
      // Only the rows the vertical pass reads.
      const first = v.min[0]!;
      const last = v.min[outHeight - 1]! + v.count[outHeight - 1]!;
      im = horizontal(im, coefficients(width, outWidth, filter), outWidth, first, last - first, channels);
      if (needVertical) im = vertical(im, v, outHeight, first, channels);
    } else if (needVertical) im = vertical(im, v, outHeight, 0, channels);
  } else {
    if (needVertical) im = vertical(im, coefficients(height, outHeight, filter), outHeight, 0, channels);
    if (needHorizontal) im = horizontal(im, coefficients(width, outWidth, filter), outWidth, 0, outHeight, channels);
  }
  if (crop.left === 0 && crop.top === 0 && crop.width === im.width && crop.height === im.height) return im.data === src ? src.slice() : im.data;
  const out = new Uint8Array(crop.width * crop.height * channels);
  for (let y = 0; y < crop.height; y++) {
    const from = ((crop.top + y) * im.width + crop.left) * channels;
    out.set(im.data.subarray(from, from + crop.width * channels), y * crop.width * channels);
  }
  return out;
}
