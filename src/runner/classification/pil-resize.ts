// Pillow's resize of 8-bit images (libImaging/Resample.c), which torchvision's Resize runs on PIL
// images and so both `yolo val` for classification (classify_transforms, bilinear) and the
// torchvision/timm reference evaluations (bilinear or bicubic): a filter widened by the scale factor when
// shrinking (antialiasing), coefficients normalised per output pixel and turned into 22-bit
// fixed point, a horizontal pass into 8-bit rows, then a vertical pass, each rounded and clipped.
// Reproducing it bit for bit gives the network the same input as those tools, so top-1 and
// top-5 cannot differ from theirs by resampling. Pillow 13 runs the vertical pass first when the
// height shrinks more than twice as much as the width, which rounds differently: so does this.

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

interface Plane {
  data: Uint8Array;
  width: number;
  height: number;
}

interface ResizeKernel {
  memory: { buffer: ArrayBuffer; grow(pages: number): number };
  horizontal: (...args: number[]) => void;
  vertical: (...args: number[]) => void;
}

// Node's own WebAssembly (the type definitions here leave it out).
const { WebAssembly: wasm } = globalThis as unknown as {
  WebAssembly: { Module: new (bytes: Uint8Array) => object; Instance: new (module: object) => { exports: unknown } };
};

/** The two passes in WebAssembly SIMD (pil-resize.wat): JavaScript loops took 4x as long. */
const kernel = new wasm.Instance(new wasm.Module(Buffer.from(PIL_RESIZE_WASM, 'base64'))).exports as ResizeKernel;

/**
 * Places arrays in the kernel's memory, 16-byte aligned with 16 bytes to spare after each (the
 * kernel reads and writes whole vectors), growing it when needed: it keeps the size the largest
 * image needed (about that image's decoded rows and its resized window).
 */
class KernelMemory {
  #top = 0;
  readonly #blocks: Array<{ at: number; data?: Uint8Array | Int32Array }> = [];

  add(bytes: number, data?: Uint8Array | Int32Array): number {
    const at = Math.ceil(this.#top / 16) * 16;
    this.#top = at + bytes + 16;
    this.#blocks.push({ at, ...(data ? { data } : {}) });
    return at;
  }

  /** Grows the memory to fit, then copies every block's data in. */
  fill(): void {
    const missing = this.#top - kernel.memory.buffer.byteLength;
    if (missing > 0) kernel.memory.grow(Math.ceil(missing / 65536));
    const bytes = new Uint8Array(kernel.memory.buffer);
    for (const b of this.#blocks) if (b.data) bytes.set(new Uint8Array(b.data.buffer, b.data.byteOffset, b.data.byteLength), b.at);
  }
}

function placeCoefficients(mem: KernelMemory, k: Coefficients) {
  return { min: mem.add(k.min.byteLength, k.min), count: mem.add(k.count.byteLength, k.count), weights: mem.add(k.weights.byteLength, k.weights) };
}

/**
 * ImagingResampleHorizontal_8bpc for output columns [x0, x0 + outWidth) over rows
 * [first, first + rows) of `src`, whose column 0 is input column `colShift`.
 */
function horizontal(src: Plane, k: Coefficients, x0: number, outWidth: number, first: number, rows: number, colShift: number): Plane {
  const mem = new KernelMemory();
  const c = placeCoefficients(mem, k);
  const rowBytes = src.width * 3;
  const input = mem.add(rows * rowBytes, src.data.subarray(first * rowBytes, (first + rows) * rowBytes));
  const out = mem.add(outWidth * rows * 3);
  mem.fill();
  kernel.horizontal(input, src.width, 0, rows, x0, outWidth, colShift, c.min, c.count, c.weights, k.ksize, out);
  return { data: new Uint8Array(kernel.memory.buffer, out, outWidth * rows * 3).slice(), width: outWidth, height: rows };
}

/**
 * ImagingResampleVertical_8bpc for output rows [y0, y0 + outHeight) and input columns
 * [x0, x0 + width) of `src`, whose row 0 is input row `rowShift`.
 */
function vertical(src: Plane, k: Coefficients, y0: number, outHeight: number, rowShift: number, x0: number, width: number): Plane {
  const mem = new KernelMemory();
  const c = placeCoefficients(mem, k);
  const stride = src.width * 3;
  // Only the input rows these output rows read.
  const from = k.min[y0]! - rowShift;
  const to = k.min[y0 + outHeight - 1]! + k.count[y0 + outHeight - 1]! - rowShift;
  const input = mem.add((to - from) * stride, src.data.subarray(from * stride, to * stride));
  const out = mem.add(width * outHeight * 3);
  mem.fill();
  kernel.vertical(input, stride, y0, outHeight, rowShift + from, x0 * 3, width * 3, c.min, c.count, c.weights, k.ksize, out);
  return { data: new Uint8Array(kernel.memory.buffer, out, width * outHeight * 3).slice(), width, height: outHeight };
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
  const source: Plane = { data: src, width, height };
  if (!needHorizontal && !needVertical) return windowOf(source, crop, channels);
  if (horizontalFirst) {
    const v = needVertical ? coefficients(height, outHeight, filter) : undefined;
    // The input rows the vertical pass reads for the window's rows (the window's rows without one).
    const first = v ? v.min[top]! : top;
    const last = v ? v.min[top + crop.height - 1]! + v.count[top + crop.height - 1]! : top + crop.height;
    if (!needHorizontal) return vertical(source, v!, top, crop.height, 0, left, crop.width).data;
    const rows = horizontal(source, coefficients(width, outWidth, filter), left, crop.width, first, last - first, 0);
    return v ? vertical(rows, v, top, crop.height, first, 0, crop.width).data : rows.data;
  }
  // The height shrinks most: the vertical pass first, over the input columns the horizontal one reads.
  const h = needHorizontal ? coefficients(width, outWidth, filter) : undefined;
  const firstColumn = h ? h.min[left]! : left;
  const lastColumn = h ? h.min[left + crop.width - 1]! + h.count[left + crop.width - 1]! : left + crop.width;
  const columns = vertical(source, coefficients(height, outHeight, filter), top, crop.height, 0, firstColumn, lastColumn - firstColumn);
  return h ? horizontal(columns, h, left, crop.width, 0, crop.height, firstColumn).data : columns.data;
}
