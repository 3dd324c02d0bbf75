// YOLOv8-seg masks: logits = coefficients . prototypes ([32, H/4, W/4] for a [H, W] input), taken
// to the original image's pixels, cropped to the object's box and thresholded at logit 0
// (sigmoid 0.5), as Ultralytics' retina masks (process_mask_native) do. The way back from the
// prototype grid is one bilinear resample (PyTorch align_corners=False) through the letterbox:
// original pixel centre -> network input -> prototype cell. Only the box's window is computed.
import { roundHalfEven } from '../classification/preprocess.ts';
import { inputToOriginal } from './letterbox.ts';
import { encodeMask, type Rle } from '../segmentation/rle.ts';

export interface Prototypes {
  /** [channels, height, width], one image's. */
  data: Float32Array;
  channels: number;
  height: number;
  width: number;
}

/** Where an original pixel lands in the network input: Ultralytics' scale_image crop of the padding. */
export interface InputMapping {
  inputSize: [number, number];
  original: { width: number; height: number };
}

function crop(m: InputMapping): { left: number; top: number; width: number; height: number } {
  const [inH, inW] = m.inputSize;
  const { padX, padY, left, top } = inputToOriginal(m.inputSize, m.original);
  return { top, left, height: roundHalfEven(inH - padY + 0.1) - top, width: roundHalfEven(inW - padX + 0.1) - left };
}

/** Source coordinates of bilinear resizing (align_corners=False), clamped as PyTorch does. */
function sourceAxis(count: number, start: number, span: number, outOf: number, inputSpan: number, gridSize: number) {
  const i0 = new Int32Array(count);
  const i1 = new Int32Array(count);
  const frac = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const inputCoord = start + ((i + 0.5) * span) / outOf; // network-input pixels
    const src = Math.max(0, (inputCoord * gridSize) / inputSpan - 0.5);
    const lo = Math.min(Math.floor(src), gridSize - 1);
    i0[i] = lo;
    i1[i] = Math.min(lo + 1, gridSize - 1);
    frac[i] = src - lo;
  }
  return { i0, i1, frac };
}

/**
 * The mask of one object in original pixels. `box` is [x1, y1, x2, y2] in original pixels; a
 * pixel column r is inside when x1 <= r < x2 (Ultralytics' crop_mask), likewise rows.
 */
export function instanceMask(protos: Prototypes, coefficients: ArrayLike<number>, box: [number, number, number, number], m: InputMapping): Rle {
  const { width: W, height: H } = m.original;
  const out = new Uint8Array(W * H);
  const x0 = Math.max(0, Math.ceil(box[0]));
  const x1 = Math.min(W, Math.ceil(box[2]));
  const y0 = Math.max(0, Math.ceil(box[1]));
  const y1 = Math.min(H, Math.ceil(box[3]));
  if (x1 > x0 && y1 > y0) {
    const c = crop(m);
    const [inH, inW] = m.inputSize;
    const xs = sourceAxis(W, c.left, c.width, W, inW, protos.width);
    const ys = sourceAxis(H, c.top, c.height, H, inH, protos.height);
    // Logits on the prototype cells the window reads.
    const gx0 = xs.i0[x0]!;
    const gx1 = xs.i1[x1 - 1]!;
    const gy0 = ys.i0[y0]!;
    const gy1 = ys.i1[y1 - 1]!;
    const gw = gx1 - gx0 + 1;
    const logits = new Float32Array(gw * (gy1 - gy0 + 1));
    const plane = protos.width * protos.height;
    for (let k = 0; k < protos.channels; k++) {
      const ck = coefficients[k]!;
      if (ck === 0) continue;
      const base = k * plane;
      for (let gy = gy0; gy <= gy1; gy++) {
        const row = base + gy * protos.width;
        const o = (gy - gy0) * gw - gx0;
        for (let gx = gx0; gx <= gx1; gx++) logits[o + gx]! += ck * protos.data[row + gx]!;
      }
    }
    for (let y = y0; y < y1; y++) {
      const ra = (ys.i0[y]! - gy0) * gw - gx0;
      const rb = (ys.i1[y]! - gy0) * gw - gx0;
      const fy = ys.frac[y]!;
      for (let x = x0; x < x1; x++) {
        const fx = xs.frac[x]!;
        const a = xs.i0[x]!;
        const b = xs.i1[x]!;
        const top = logits[ra + a]! * (1 - fx) + logits[ra + b]! * fx;
        const bottom = logits[rb + a]! * (1 - fx) + logits[rb + b]! * fx;
        if (top * (1 - fy) + bottom * fy > 0) out[y * W + x] = 1;
      }
    }
  }
  return encodeMask(out, H, W);
}
