// Classification preprocessing as torchvision / Ultralytics define it: apply EXIF orientation (as
// cv2.imread does for `yolo val`), resize so the shorter side is `resizeShorter` with Pillow's
// bilinear or bicubic filter (torchvision's Resize on a PIL image), center-crop to the input size, scale to
// [0,1] and normalize per channel in float32 (ToTensor, Normalize), lay out as CHW.
import { decodeRgb, transientRgb } from '../image/decode-rgb.ts';
import { undecodableReason } from '../image/undecodable.ts';
import { pilResize } from './pil-resize.ts';

export interface ClassificationPreprocess {
  /** [height, width] of the network input. */
  inputSize: [number, number];
  resizeShorter: number;
  interpolation: 'bilinear' | 'bicubic';
  mean: [number, number, number];
  std: [number, number, number];
}

export class ImageDecodeError extends Error {
  readonly code = 'IMAGE_DECODE_FAILED';
  constructor(message: string) {
    super(message);
    this.name = 'ImageDecodeError';
  }

  /** The error for `bytes` that a decoder refused with `err`, in words that depend on the image alone (image/undecodable.ts). */
  static of(err: unknown, bytes: Uint8Array): ImageDecodeError {
    return new ImageDecodeError(`cannot decode image: ${undecodableReason(err, bytes)}`);
  }
}

/** Python's round(): half to even. torchvision computes crop offsets with it. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  // `|| 0` turns -0 into 0, as Python's int(round(-0.1)) is 0.
  return (Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r) || 0;
}

/** Size after "resize shorter side", as torchvision computes it (the long side is truncated). */
export function resizedSize(width: number, height: number, shorter: number, crop: [number, number]): [number, number] {
  let w: number;
  let h: number;
  if (width <= height) {
    w = shorter;
    h = Math.trunc((shorter * height) / width);
  } else {
    h = shorter;
    w = Math.trunc((shorter * width) / height);
  }
  // A non-square crop larger than the resized image: grow until it covers the crop.
  const grow = Math.max(crop[1] / w, crop[0] / h, 1);
  return grow > 1 ? [Math.ceil(w * grow), Math.ceil(h * grow)] : [w, h];
}

/** Where the network's input came from: the original size, the resized size, the crop's offset. */
export interface CropGeometry {
  original: { width: number; height: number };
  resized: { width: number; height: number };
  left: number;
  top: number;
}

/** Decodes and preprocesses one image into a CHW float32 tensor of `3 * h * w` values. */
export async function preprocessClassification(bytes: Uint8Array, p: ClassificationPreprocess): Promise<Float32Array> {
  return (await preprocessClassificationWithGeometry(bytes, p)).tensor as Float32Array;
}

/**
 * How a network input is handed over: float32 CHW converted here, or the uint8 HWC pixels for a
 * model that converts them itself (model/uint8-input.ts).
 */
export type InputLayout = 'float32-nchw' | 'uint8-nhwc';

export async function preprocessClassificationWithGeometry(
  bytes: Uint8Array,
  p: ClassificationPreprocess,
  layout: InputLayout = 'float32-nchw',
): Promise<{ tensor: Float32Array | Uint8Array; geometry: CropGeometry }> {
  const [cropH, cropW] = p.inputSize;
  let pixels: Uint8Array;
  let geometry: CropGeometry;
  try {
    // Nothing is awaited between a transient decode and the resize that copies what it needs.
    const { data, ...info } = transientRgb(bytes) ?? (await decodeRgb(bytes));
    const [rw, rh] = resizedSize(info.width, info.height, p.resizeShorter, p.inputSize);
    const left = roundHalfEven((rw - cropW) / 2);
    const top = roundHalfEven((rh - cropH) / 2);
    pixels = pilResize(data, info.width, info.height, 3, rw, rh, { left, top, width: cropW, height: cropH }, p.interpolation);
    geometry = { original: { width: info.width, height: info.height }, resized: { width: rw, height: rh }, left, top };
  } catch (err) {
    throw ImageDecodeError.of(err, bytes);
  }
  return { tensor: layout === 'uint8-nhwc' ? pixels : hwcToChw(pixels, cropH * cropW, p.mean, p.std), geometry };
}

const f32 = Math.fround;

/**
 * RGB bytes (HWC) to the network's CHW float32 as torchvision computes it: ToTensor's float32
 * division by 255, then Normalize's (x - mean) / std in float32 (mean 0 and std 1 for
 * Ultralytics models leave x / 255). One lookup table per channel.
 */
export function hwcToChw(pixels: Uint8Array, plane: number, mean: [number, number, number], std: [number, number, number]): Float32Array {
  const out = new Float32Array(plane * 3);
  const table = new Float32Array(256);
  for (let c = 0; c < 3; c++) {
    const m = f32(mean[c]!);
    const s = f32(std[c]!);
    for (let v = 0; v < 256; v++) table[v] = f32(f32(f32(v / 255) - m) / s);
    const base = c * plane;
    for (let i = 0, j = c; i < plane; i++, j += 3) out[base + i] = table[pixels[j]!]!;
  }
  return out;
}
