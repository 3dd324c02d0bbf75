// YOLOv8-seg masks as Ultralytics 8.4 makes them (ultralytics/utils/ops.py), in float32:
// logits = coefficients . prototypes ([nm, H/4, W/4] for an [H, W] input), then
//   process_mask_native(protos, coeffs, boxes, shape): upsample the prototype grid by the
//     smallest f in {1, 2, 4} that makes the letterbox padding whole cells (bilinear), crop the
//     padding and resize to `shape` (scale_masks, bilinear, align_corners=False), logit > 0, then
//     crop to the box (crop_mask: column r inside when x1 <= r < x2, likewise rows);
//   inference jobs (yolo predict retina_masks=True): shape = the original image, boxes in original
//     pixels; a detection whose mask is empty is dropped, as the predictor does;
//   test runs (what yolo val save_json=True writes): shape = the network input, boxes in network
//     pixels, then scale_masks to the original image through ratio_pad and .byte(), which keeps a
//     pixel only where the resampled mask is exactly 1.
// Only the box's window is computed: each output pixel reads its own bilinear neighbours, so the
// window is exactly what the whole image would give there. The one difference from PyTorch is
// the float32 summation order of the coefficient dot product (BLAS may sum in another order), which
// can flip a pixel whose logit is within a few ulp of 0.
import { roundHalfEven } from '../classification/preprocess.ts';
import { encodeMask, type Rle } from '../segmentation/rle.ts';
import type { Letterbox } from './letterbox.ts';

export interface Prototypes {
  /** [channels, height, width], one image's. */
  data: Float32Array;
  channels: number;
  height: number;
  width: number;
}

const f32 = Math.fround;
const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/**
 * One axis of PyTorch's bilinear resize (align_corners=False): for each output index, the two
 * source indices and their weights, in float32. `scale` is output-to-input (1/scale_factor when a
 * factor is given, else input/output).
 */
export function bilinearAxis(inSize: number, outSize: number, scale: number): { i0: Int32Array; i1: Int32Array; w0: Float32Array; w1: Float32Array } {
  const i0 = new Int32Array(outSize);
  const i1 = new Int32Array(outSize);
  const w0 = new Float32Array(outSize);
  const w1 = new Float32Array(outSize);
  const s = f32(scale);
  for (let o = 0; o < outSize; o++) {
    if (inSize === outSize) {
      i0[o] = o;
      i1[o] = o;
      w0[o] = 1;
      w1[o] = 0;
      continue;
    }
    const real = Math.max(0, f32(f32(s * f32(o + 0.5)) - 0.5));
    const lo = Math.min(Math.floor(real), inSize - 1);
    const lambda = Math.min(Math.max(f32(real - lo), 0), 1);
    i0[o] = lo;
    i1[o] = lo + (lo < inSize - 1 ? 1 : 0);
    w1[o] = lambda;
    w0[o] = f32(1 - lambda);
  }
  return { i0, i1, w0, w1 };
}

/** The logit grid (prototype resolution) of one detection: coefficients . prototypes, in float32. */
function logitGrid(protos: Prototypes, coefficients: ArrayLike<number>): Float32Array {
  const plane = protos.width * protos.height;
  const out = new Float32Array(plane);
  for (let k = 0; k < protos.channels; k++) {
    const ck = coefficients[k]!;
    if (ck === 0) continue;
    const base = k * plane;
    for (let p = 0; p < plane; p++) out[p] = f32(out[p]! + f32(ck * protos.data[base + p]!));
  }
  return out;
}

type AxisSample = { i0: number; i1: number; w0: number; w1: number };

/**
 * One bilinear sample as torch's CPU kernel computes it for the sizes Ultralytics uses: along x,
 * then along y, each step one float32 product and one fused multiply-add (the compiler contracts
 * `t0 * w0 + t1 * w1` into fma(t0, w0, t1 * w1)). A product of two float32 values is exact in a
 * double, so the fma is the double sum rounded once. Summing the four weight products instead
 * rounds differently: all-ones input can come out 0.99999994, which `.byte()` turns into 0.
 */
function bilinear(y: AxisSample, x: AxisSample, v00: number, v01: number, v10: number, v11: number): number {
  const t0 = f32(v00 * x.w0 + f32(v01 * x.w1));
  const t1 = f32(v10 * x.w0 + f32(v11 * x.w1));
  return f32(t0 * y.w0 + f32(t1 * y.w1));
}

/** Samples `grid` (row width gw) bilinearly at one output pixel, given its two axes' entries. */
function sample(grid: Float32Array, gw: number, y: AxisSample, x: AxisSample): number {
  return bilinear(y, x, grid[y.i0 * gw + x.i0]!, grid[y.i0 * gw + x.i1]!, grid[y.i1 * gw + x.i0]!, grid[y.i1 * gw + x.i1]!);
}

const at = (a: ReturnType<typeof bilinearAxis>, i: number) => ({ i0: a.i0[i]!, i1: a.i1[i]!, w0: a.w0[i]!, w1: a.w1[i]! });

/** Pixel window [x0, x1) x [y0, y1) that crop_mask keeps for a box, inside a `width` x `height` image. */
function boxWindow(box: ArrayLike<number>, width: number, height: number) {
  // Column r is kept when x1 <= r < x2 (float comparison of the integer r).
  return {
    x0: Math.max(0, Math.ceil(box[0]!)),
    x1: Math.min(width, Math.ceil(box[2]!)),
    y0: Math.max(0, Math.ceil(box[1]!)),
    y1: Math.min(height, Math.ceil(box[3]!)),
  };
}

/**
 * process_mask_native for one detection: the binary mask at `shape` ([height, width]), cropped to
 * `box` (in `shape`'s pixels). Returned row-major, 0/1.
 */
export function processMaskNative(protos: Prototypes, coefficients: ArrayLike<number>, box: ArrayLike<number>, shape: [number, number]): Uint8Array {
  const [h, w] = shape;
  const { height: mh, width: mw } = protos;
  const out = new Uint8Array(h * w);
  const win = boxWindow(box, w, h);
  if (win.x1 <= win.x0 || win.y1 <= win.y0) return out;
  const logits = logitGrid(protos, coefficients);
  // The smallest upsample that crops the input-size letterbox padding on whole pixels.
  const gain = Math.min((4 * mh) / h, (4 * mw) / w);
  const pad = (4 * mh - Math.max(roundHalfEven(h * gain), 1)) | (4 * mw - Math.max(roundHalfEven(w * gain), 1));
  const f = 4 / gcd(4, pad | Math.floor(pad / 2));
  const [fh, fw] = [mh * f, mw * f];
  // Upsampled grid by f (scale factor given: source index = (o + 0.5) / f - 0.5).
  const upY = bilinearAxis(mh, fh, 1 / f);
  const upX = bilinearAxis(mw, fw, 1 / f);
  // scale_masks: the content of the upsampled grid, resized to shape.
  const g = Math.min(fh / h, fw / w);
  const top = roundHalfEven((fh - Math.max(roundHalfEven(h * g), 1)) / 2 - 0.1);
  const left = roundHalfEven((fw - Math.max(roundHalfEven(w * g), 1)) / 2 - 0.1);
  const ch = Math.max(roundHalfEven(h * g), 1);
  const cw = Math.max(roundHalfEven(w * g), 1);
  const ys = bilinearAxis(ch, h, ch / h);
  const xs = bilinearAxis(cw, w, cw / w);
  // The upsampled cells the window reads, computed once each.
  const cache = new Map<number, number>();
  const up = (cy: number, cx: number) => {
    const key = cy * fw + cx;
    let v = cache.get(key);
    if (v === undefined) {
      v = f === 1 ? logits[cy * mw + cx]! : sample(logits, mw, at(upY, cy), at(upX, cx));
      cache.set(key, v);
    }
    return v;
  };
  for (let y = win.y0; y < win.y1; y++) {
    const sy = at(ys, y);
    for (let x = win.x0; x < win.x1; x++) {
      const sx = at(xs, x);
      const v = bilinear(sy, sx, up(top + sy.i0, left + sx.i0), up(top + sy.i0, left + sx.i1), up(top + sy.i1, left + sx.i0), up(top + sy.i1, left + sx.i1));
      if (v > 0) out[y * w + x] = 1;
    }
  }
  return out;
}

/**
 * scale_masks of a binary network-input mask to the original image through the val ratio_pad,
 * then `.byte()`: 1 only where the bilinear resample is exactly 1.
 */
export function scaleMaskToOriginal(mask: Uint8Array, inputSize: [number, number], g: Letterbox, original: { width: number; height: number }): Uint8Array {
  const [, inW] = inputSize;
  const { width: W, height: H } = original;
  const ch = Math.max(roundHalfEven(H * g.gainY), 1);
  const cw = Math.max(roundHalfEven(W * g.gainX), 1);
  const ys = bilinearAxis(ch, H, ch / H);
  const xs = bilinearAxis(cw, W, cw / W);
  const out = new Uint8Array(W * H);
  for (let y = 0; y < H; y++) {
    const sy = at(ys, y);
    const r0 = (g.top + sy.i0) * inW + g.left;
    const r1 = (g.top + sy.i1) * inW + g.left;
    for (let x = 0; x < W; x++) {
      const sx = at(xs, x);
      if (bilinear(sy, sx, mask[r0 + sx.i0]!, mask[r0 + sx.i1]!, mask[r1 + sx.i0]!, mask[r1 + sx.i1]!) >= 1) out[y * W + x] = 1;
    }
  }
  return out;
}

/** The mask of one detection in original pixels, as an inference job (predict) or a test run (val) makes it. */
export function instanceMask(
  protos: Prototypes,
  coefficients: ArrayLike<number>,
  boxes: { network: ArrayLike<number>; original: ArrayLike<number> },
  m: { mode: 'predict' | 'val'; inputSize: [number, number]; geometry: Letterbox; original: { width: number; height: number } },
): Rle {
  const { width: W, height: H } = m.original;
  const mask =
    m.mode === 'predict'
      ? processMaskNative(protos, coefficients, boxes.original, [H, W])
      : scaleMaskToOriginal(processMaskNative(protos, coefficients, boxes.network, m.inputSize), m.inputSize, m.geometry, m.original);
  return encodeMask(mask, H, W);
}
