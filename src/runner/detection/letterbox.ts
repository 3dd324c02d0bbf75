// Ultralytics' LetterBox (auto=False, center=True, scaleup=True), as in
// ultralytics/data/augment.py, and scale_boxes from ultralytics/utils/ops.py for the way back.
// The rounding is Python's (half to even), the padding split is round(d - 0.1) / round(d + 0.1).
import sharp from 'sharp';
import { hwcToChw, ImageDecodeError, roundHalfEven } from '../classification/preprocess.ts';

export interface Letterbox {
  /** Scale applied to the original image. */
  ratio: number;
  /** Size of the resized image before padding. */
  width: number;
  height: number;
  top: number;
  bottom: number;
  left: number;
  right: number;
}

/** Geometry of letterboxing a `width` x `height` image into `inputSize` [height, width]. */
export function letterboxGeometry(width: number, height: number, inputSize: [number, number]): Letterbox {
  const [newH, newW] = inputSize;
  const ratio = Math.min(newH / height, newW / width);
  const resizedW = roundHalfEven(width * ratio);
  const resizedH = roundHalfEven(height * ratio);
  const dw = (newW - resizedW) / 2;
  const dh = (newH - resizedH) / 2;
  return {
    ratio,
    width: resizedW,
    height: resizedH,
    top: roundHalfEven(dh - 0.1),
    bottom: roundHalfEven(dh + 0.1),
    left: roundHalfEven(dw - 0.1),
    right: roundHalfEven(dw + 0.1),
  };
}

/** Letterboxed RGB pixels (HWC uint8) of an image, and the geometry used. */
export async function letterbox(
  bytes: Uint8Array,
  inputSize: [number, number],
): Promise<{ pixels: Buffer; geometry: Letterbox; original: { width: number; height: number } }> {
  const image = sharp(bytes, { failOn: 'error', autoOrient: true });
  const meta = await image.metadata();
  const width = meta.autoOrient?.width ?? meta.width;
  const height = meta.autoOrient?.height ?? meta.height;
  if (!width || !height) throw new Error('image has no dimensions');
  const g = letterboxGeometry(width, height, inputSize);
  let pipeline = image.removeAlpha().toColourspace('srgb');
  if (g.width !== width || g.height !== height) pipeline = pipeline.resize({ width: g.width, height: g.height, fit: 'fill', kernel: 'linear' });
  const pixels = await pipeline
    .extend({ top: g.top, bottom: g.bottom, left: g.left, right: g.right, background: { r: 114, g: 114, b: 114 } })
    .raw()
    .toBuffer();
  return { pixels, geometry: g, original: { width, height } };
}

/** Decodes, letterboxes and normalizes one image into the network's CHW float32 input. */
export async function letterboxTensor(
  bytes: Uint8Array,
  inputSize: [number, number],
  norm: { mean: [number, number, number]; std: [number, number, number] },
): Promise<{ tensor: Float32Array; original: { width: number; height: number } }> {
  let lb;
  try {
    lb = await letterbox(bytes, inputSize);
  } catch (err) {
    throw new ImageDecodeError(`cannot decode image: ${(err as Error).message.split('\n')[0]}`);
  }
  return { tensor: hwcToChw(lb.pixels, inputSize[0] * inputSize[1], norm.mean, norm.std), original: lb.original };
}

/**
 * The way back from network input to original pixels, as Ultralytics' scale_boxes, scale_coords
 * and scale_image compute it: the gain, and the padding recomputed from the unrounded scaled size
 * (`pad*`), whose first row/column is `round(pad - 0.1)` (`left`, `top`).
 */
export function inputToOriginal(inputSize: [number, number], original: { width: number; height: number }) {
  const [inH, inW] = inputSize;
  const gain = Math.min(inH / original.height, inW / original.width);
  const padX = (inW - original.width * gain) / 2;
  const padY = (inH - original.height * gain) / 2;
  return { gain, padX, padY, left: roundHalfEven(padX - 0.1), top: roundHalfEven(padY - 0.1) };
}

/** A point in network input pixels back in the original image, clipped to it (scale_coords). */
export function pointToOriginal(x: number, y: number, back: ReturnType<typeof inputToOriginal>, original: { width: number; height: number }): [number, number] {
  const clip = (v: number, max: number) => Math.min(Math.max(v, 0), max);
  return [clip((x - back.left) / back.gain, original.width), clip((y - back.top) / back.gain, original.height)];
}

/** Boxes [x1, y1, x2, y2] from network input pixels back to the original image, clipped to it (scale_boxes). */
export function scaleBoxes(boxes: number[][], inputSize: [number, number], original: { width: number; height: number }): number[][] {
  const back = inputToOriginal(inputSize, original);
  return boxes.map(([x1, y1, x2, y2]) => [...pointToOriginal(x1!, y1!, back, original), ...pointToOriginal(x2!, y2!, back, original)]);
}
