// Classification preprocessing as torchvision / Ultralytics define it: apply EXIF orientation,
// resize so the shorter side is `resizeShorter` (bilinear), center-crop to the input size,
// scale to [0,1], normalize per channel, lay out as CHW float32.
import sharp from 'sharp';

// One libvips thread per image: images are decoded in parallel already (DECODE_CONCURRENCY), and
// more threads per image only contend with inference for the same cores.
sharp.concurrency(Number(process.env.KINFER_VIPS_THREADS ?? 1));

export interface ClassificationPreprocess {
  /** [height, width] of the network input. */
  inputSize: [number, number];
  resizeShorter: number;
  mean: [number, number, number];
  std: [number, number, number];
}

export class ImageDecodeError extends Error {
  readonly code = 'IMAGE_DECODE_FAILED';
  constructor(message: string) {
    super(message);
    this.name = 'ImageDecodeError';
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

/** Decodes and preprocesses one image into a CHW float32 tensor of `3 * h * w` values. */
export async function preprocessClassification(bytes: Uint8Array, p: ClassificationPreprocess): Promise<Float32Array> {
  const [cropH, cropW] = p.inputSize;
  let pixels: Buffer;
  try {
    const image = sharp(bytes, { failOn: 'error', autoOrient: true });
    const meta = await image.metadata();
    const width = meta.autoOrient?.width ?? meta.width;
    const height = meta.autoOrient?.height ?? meta.height;
    if (!width || !height) throw new Error('image has no dimensions');
    const [rw, rh] = resizedSize(width, height, p.resizeShorter, p.inputSize);
    const left = roundHalfEven((rw - cropW) / 2);
    const top = roundHalfEven((rh - cropH) / 2);
    pixels = await image
      .removeAlpha()
      .toColourspace('srgb')
      .resize({ width: rw, height: rh, fit: 'fill', kernel: 'linear' })
      .extract({ left, top, width: cropW, height: cropH })
      .raw()
      .toBuffer();
  } catch (err) {
    throw new ImageDecodeError(`cannot decode image: ${(err as Error).message.split('\n')[0]}`);
  }
  const plane = cropH * cropW;
  if (pixels.length !== plane * 3) throw new ImageDecodeError(`expected 3 channels, got ${pixels.length / plane}`);
  return hwcToChw(pixels, plane, p.mean, p.std);
}

/** RGB bytes (HWC) to the network's CHW float32: /255, then (x - mean) / std per channel. */
export function hwcToChw(pixels: Uint8Array, plane: number, mean: [number, number, number], std: [number, number, number]): Float32Array {
  const out = new Float32Array(plane * 3);
  for (let c = 0; c < 3; c++) {
    const scale = 1 / (255 * std[c]!);
    const shift = mean[c]! / std[c]!;
    const base = c * plane;
    for (let i = 0, j = c; i < plane; i++, j += 3) out[base + i] = pixels[j]! * scale - shift;
  }
  return out;
}
