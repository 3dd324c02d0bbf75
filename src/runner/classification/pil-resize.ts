// Pillow's resize of 8-bit images (libImaging/Resample.c), which torchvision's Resize runs on PIL
// images and so both `yolo val` for classification (classify_transforms, bilinear) and the
// torchvision/timm reference evaluations (bilinear or bicubic): a filter widened by the scale factor when
// shrinking (antialiasing), coefficients normalised per output pixel and turned into 22-bit
// fixed point, a horizontal pass into 8-bit rows, then a vertical pass, each rounded and clipped.
// Reproducing it bit for bit gives the network the same input as those tools, so top-1 and
// top-5 cannot differ from theirs by resampling. Pillow 13 runs the vertical pass first when the
// height shrinks more than twice as much as the width, which rounds differently: so does this.

import { instantiateKernel } from '../wasm-kernel.ts';
import { PIL_RESIZE_WASM } from './pil-resize-wasm.ts';

const PRECISION_BITS = 32 - 8 - 2;
const ONE = 2 ** PRECISION_BITS;

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

/**
 * coefficients(), kept by sizes and filter: a dataset's images mostly share their sizes, and each
 * image asks for one set per pass. Read only once made (the kernel gets copies).
 */
const coefficientCache = new Map<string, Coefficients>();
function cachedCoefficients(inSize: number, outSize: number, filter: PilFilter): Coefficients {
  const key = `${inSize}:${outSize}:${filter}`;
  let c = coefficientCache.get(key);
  if (!c) {
    // A bound for a stream of all-different sizes; 64 sets of a few KB.
    if (coefficientCache.size >= 64) coefficientCache.clear();
    coefficientCache.set(key, (c = coefficients(inSize, outSize, filter)));
  }
  return c;
}

interface ResizeKernel {
  memory: { buffer: ArrayBuffer; grow(pages: number): number };
  horizontal: (...args: number[]) => void;
  vertical: (...args: number[]) => void;
}

/** The two passes in WebAssembly SIMD (pil-resize.wat): JavaScript loops took 6-7x as long. */
const kernel = instantiateKernel<ResizeKernel>(PIL_RESIZE_WASM);

/**
 * Places arrays in the kernel's memory, 16-byte aligned with 16 bytes to spare after each (the
 * kernel reads and writes whole vectors), growing it when needed: it keeps the size the largest
 * image needed (about that image's decoded rows and its resized window).
 */
class KernelMemory {
  #top = 0;
  #toCopy: Array<{ at: number; data: Uint8Array | Int32Array }> = [];

  /** Room for `bytes`, and `data` copied there by ready(); its address. */
  add(bytes: number, data?: Uint8Array | Int32Array): number {
    const at = Math.ceil(this.#top / 16) * 16;
    this.#top = at + bytes + 16;
    if (data) this.#toCopy.push({ at, data });
    return at;
  }

  /** Grows the memory to hold everything added so far, and copies in the data not there yet. */
  ready(): void {
    const missing = this.#top - kernel.memory.buffer.byteLength;
    if (missing > 0) kernel.memory.grow(Math.ceil(missing / 65536));
    const bytes = new Uint8Array(kernel.memory.buffer);
    for (const b of this.#toCopy) bytes.set(new Uint8Array(b.data.buffer, b.data.byteOffset, b.data.byteLength), b.at);
    this.#toCopy = [];
  }
}

/** RGB rows in the kernel's memory: `rows` rows of `width` pixels from address `at`. */
interface KernelPlane {
  at: number;
  width: number;
  rows: number;
}

function placeCoefficients(mem: KernelMemory, k: Coefficients) {
  return { min: mem.add(k.min.byteLength, k.min), count: mem.add(k.count.byteLength, k.count), weights: mem.add(k.weights.byteLength, k.weights) };
}

/** Rows [from, to) of an image `width` pixels wide, copied into the kernel's memory. */
function rowsOf(mem: KernelMemory, src: Uint8Array, width: number, from: number, to: number): KernelPlane {
  return { at: mem.add((to - from) * width * 3, src.subarray(from * width * 3, to * width * 3)), width, rows: to - from };
}

/** ImagingResampleHorizontal_8bpc for output columns [x0, x0 + outWidth) of every row of `src`, whose column 0 is input column `colShift`. */
function horizontal(mem: KernelMemory, src: KernelPlane, k: Coefficients, x0: number, outWidth: number, colShift: number): KernelPlane {
  const c = placeCoefficients(mem, k);
  const out = { at: mem.add(outWidth * src.rows * 3), width: outWidth, rows: src.rows };
  mem.ready();
  kernel.horizontal(src.at, src.width, 0, src.rows, x0, outWidth, colShift, c.min, c.count, c.weights, k.ksize, out.at);
  return out;
}

/**
 * ImagingResampleVertical_8bpc for output rows [y0, y0 + outHeight) and input columns
 * [x0, x0 + width) of `src`, whose row 0 is input row `rowShift`.
 */
function vertical(
  mem: KernelMemory,
  src: KernelPlane,
  k: Coefficients,
  y0: number,
  outHeight: number,
  rowShift: number,
  x0: number,
  width: number,
): KernelPlane {
  const c = placeCoefficients(mem, k);
  const out = { at: mem.add(width * outHeight * 3), width, rows: outHeight };
  mem.ready();
  kernel.vertical(src.at, src.width * 3, y0, outHeight, rowShift, x0 * 3, width * 3, c.min, c.count, c.weights, k.ksize, out.at);
  return out;
}

/** A plane's pixels, copied out of the kernel's memory. */
const pixelsOf = (p: KernelPlane): Uint8Array => new Uint8Array(kernel.memory.buffer, p.at, p.width * p.rows * 3).slice();

/** The window [left, left + width) x [top, top + height) of an image `imageWidth` pixels wide, copied. */
export function windowOf(src: Uint8Array, imageWidth: number, crop: { left: number; top: number; width: number; height: number }): Uint8Array {
  const out = new Uint8Array(crop.width * crop.height * 3);
  for (let y = 0; y < crop.height; y++) {
    const from = ((crop.top + y) * imageWidth + crop.left) * 3;
    out.set(src.subarray(from, from + crop.width * 3), y * crop.width * 3);
  }
  return out;
}

/**
 * Resizes `src` (HWC RGB: `channels` must be 3) from width x height to outWidth x outHeight as
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
  if (channels !== 3) throw new Error(`pilResize takes RGB pixels, not ${channels} channels`);
  const needHorizontal = outWidth !== width;
  const needVertical = outHeight !== height;
  const horizontalFirst = !(height - outHeight > 0 && height - outHeight > (width - outWidth) * 2);
  const { left, top } = crop;
  if (!needHorizontal && !needVertical) return windowOf(src, width, crop);
  // One layout in the kernel's memory for both passes: the first pass's rows stay there for the second.
  const mem = new KernelMemory();
  if (horizontalFirst) {
    const v = needVertical ? cachedCoefficients(height, outHeight, filter) : undefined;
    // The input rows the vertical pass reads for the window's rows (the window's rows without one).
    const first = v ? v.min[top]! : top;
    const last = v ? v.min[top + crop.height - 1]! + v.count[top + crop.height - 1]! : top + crop.height;
    const rows = rowsOf(mem, src, width, first, last);
    if (!needHorizontal) return pixelsOf(vertical(mem, rows, v!, top, crop.height, first, left, crop.width));
    const resized = horizontal(mem, rows, cachedCoefficients(width, outWidth, filter), left, crop.width, 0);
    return pixelsOf(v ? vertical(mem, resized, v, top, crop.height, first, 0, crop.width) : resized);
  }
  // The height shrinks most: the vertical pass first, over the input columns the horizontal one reads.
  const v = cachedCoefficients(height, outHeight, filter);
  const h = needHorizontal ? cachedCoefficients(width, outWidth, filter) : undefined;
  const firstColumn = h ? h.min[left]! : left;
  const lastColumn = h ? h.min[left + crop.width - 1]! + h.count[left + crop.width - 1]! : left + crop.width;
  const first = v.min[top]!;
  const rows = rowsOf(mem, src, width, first, v.min[top + crop.height - 1]! + v.count[top + crop.height - 1]!);
  const columns = vertical(mem, rows, v, top, crop.height, first, firstColumn, lastColumn - firstColumn);
  return pixelsOf(h ? horizontal(mem, columns, h, left, crop.width, firstColumn) : columns);
}
