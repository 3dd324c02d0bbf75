// Ultralytics' two ways into the network (pinned to Ultralytics 8.4.x, ultralytics/data/base.py,
// ultralytics/data/augment.py) and its one way back (ultralytics/utils/ops.py):
//
//   predict (inference jobs): LetterBox(imgsz, scaleup=True): ratio r = min(H/h0, W/w0), resized
//     size max(round(w0 r), 1) x max(round(h0 r), 1), padding split round(d - 0.1) / round(d + 0.1).
//   val (test runs): load_image resizes the long side to max(imgsz) (ceil, capped at imgsz; small
//     images are enlarged), then LetterBox(imgsz, scaleup=False) fits that without enlarging.
//     ratio_pad = ((h1/h0 r2, w1/w0 r2), (left, top)) is what val maps predictions back with.
//   back: scale_boxes / scale_coords subtract the padding and divide by a gain per axis: the one
//     ratio_pad gives (val), or new_side / old_side from the rounded resized size (predict).
//
// Rounding is Python's (half to even). The pixels are resampled once (sharp, bilinear) to the final
// size, where val may resample twice with OpenCV: the geometry is Ultralytics', pixel values may
// differ by interpolation rounding.
import { hwcToChw, ImageDecodeError, roundHalfEven, type InputLayout } from '../classification/preprocess.ts';
import { pixelBuffers } from '../image/buffer-pool.ts';
import { directJpeg, sharpRgb, ON_THREAD_MAX_PIXELS } from '../image/decode-rgb.ts';
import { turboJpeg } from '../image/turbo-jpeg.ts';

export type LetterboxMode = 'predict' | 'val';

export interface Letterbox {
  /** Size of the resized image before padding. */
  width: number;
  height: number;
  top: number;
  bottom: number;
  left: number;
  right: number;
  /** Network pixels per original pixel, per axis, as the way back divides by them (ratio_pad). */
  gainX: number;
  gainY: number;
  /** The image LetterBox received (val: after load_image's resize) and the ratio it applied: labels follow these. */
  loaded: { width: number; height: number; ratio: number };
}

const f32 = Math.fround;

/** LetterBox.get_params: resized size and padding of a `w` x `h` image into [H, W]. */
function letterboxParams(w: number, h: number, inputSize: [number, number], scaleup: boolean) {
  const [H, W] = inputSize;
  let r = Math.min(H / h, W / w);
  if (!scaleup) r = Math.min(r, 1);
  const width = Math.max(roundHalfEven(w * r), 1);
  const height = Math.max(roundHalfEven(h * r), 1);
  const dw = (W - width) / 2;
  const dh = (H - height) / 2;
  return { r, width, height, top: roundHalfEven(dh - 0.1), bottom: roundHalfEven(dh + 0.1), left: roundHalfEven(dw - 0.1), right: roundHalfEven(dw + 0.1) };
}

/** Geometry of bringing a `width` x `height` image into the network's `inputSize` [height, width]. */
export function letterboxGeometry(width: number, height: number, inputSize: [number, number], mode: LetterboxMode = 'predict'): Letterbox {
  // val: load_image(rect_mode=True) first brings the long side to imgsz (ceil, capped), then
  // LetterBox does not upscale; predict letterboxes the image as it is.
  let [w1, h1] = [width, height];
  if (mode === 'val') {
    const imgsz = Math.max(...inputSize);
    const r = imgsz / Math.max(height, width);
    if (r !== 1) [w1, h1] = [Math.min(Math.ceil(width * r), imgsz), Math.min(Math.ceil(height * r), imgsz)];
  }
  const p = letterboxParams(w1, h1, inputSize, mode === 'predict');
  return {
    width: p.width,
    height: p.height,
    top: p.top,
    bottom: p.bottom,
    left: p.left,
    right: p.right,
    // predict: scale_boxes computes the gains from the rounded size; val: the dataset's ratio_pad.
    gainX: mode === 'predict' ? p.width / width : (w1 / width) * p.r,
    gainY: mode === 'predict' ? p.height / height : (h1 / height) * p.r,
    loaded: { width: w1, height: h1, ratio: p.r },
  };
}

/** Letterboxed RGB pixels (HWC uint8) of an image, and the geometry used. */
export async function letterbox(
  bytes: Uint8Array,
  inputSize: [number, number],
  mode: LetterboxMode = 'predict',
): Promise<{ pixels: Buffer; geometry: Letterbox; original: { width: number; height: number } }> {
  const direct = directJpeg(bytes);
  if (direct) {
    const g = letterboxGeometry(direct.width, direct.height, inputSize, mode);
    const original = { width: direct.width, height: direct.height };
    if (g.width === direct.width && g.height === direct.height && direct.width * direct.height <= ON_THREAD_MAX_PIXELS) {
      // Decoded straight into the grey canvas, on this thread: no resampling, no copy.
      const canvas = greyCanvas(g);
      const decoded = turboJpeg()!.decodeRgb(bytes, direct, { data: canvas.subarray((g.top * canvasWidth(g) + g.left) * 3), pitch: canvasWidth(g) * 3 });
      if (decoded.ok) return { pixels: canvas, geometry: g, original };
      pixelBuffers.give(canvas.buffer);
    }
  }
  const image = await sharpRgb(bytes);
  const meta = await image.metadata();
  const width = meta.autoOrient?.width ?? meta.width;
  const height = meta.autoOrient?.height ?? meta.height;
  if (!width || !height) throw new Error('image has no dimensions');
  const g = letterboxGeometry(width, height, inputSize, mode);
  let pipeline = image;
  if (g.width !== width || g.height !== height) pipeline = pipeline.resize({ width: g.width, height: g.height, fit: 'fill', kernel: 'linear' });
  const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3 || info.width !== g.width || info.height !== g.height)
    throw new Error(`expected ${g.width}x${g.height} RGB, got ${info.width}x${info.height} with ${info.channels} channels`);
  return { pixels: padded(data, g), geometry: g, original: { width, height } };
}

const canvasWidth = (g: Letterbox) => g.left + g.width + g.right;

/**
 * The letterbox's canvas, grey (114) where the padding goes; the image's window is left to fill.
 * From `pixelBuffers`: the pipeline gives it back once its batch is reported.
 */
function greyCanvas(g: Letterbox): Buffer {
  const width = canvasWidth(g);
  const out = pixelBuffers.take(width * (g.top + g.height + g.bottom) * 3);
  const row = width * 3;
  out.fill(114, 0, g.top * row);
  out.fill(114, (g.top + g.height) * row);
  if (g.left > 0 || g.right > 0)
    for (let y = g.top; y < g.top + g.height; y++) {
      out.fill(114, y * row, y * row + g.left * 3);
      out.fill(114, y * row + (g.left + g.width) * 3, (y + 1) * row);
    }
  return out;
}

/** The grey (114) canvas of LetterBox with `resized` (HWC RGB, g.width x g.height) placed at (left, top). */
function padded(resized: Buffer, g: Letterbox): Buffer {
  // Here rather than libvips' extend: a fill and a copy per row, where extend took about a third
  // of the decode's own time (3.3 of 10.6 ms a 640x480 JPEG on the bench machine).
  const out = greyCanvas(g);
  const width = canvasWidth(g);
  const row = g.width * 3;
  if (g.left === 0 && g.right === 0) resized.copy(out, g.top * row);
  else for (let y = 0; y < g.height; y++) resized.copy(out, ((g.top + y) * width + g.left) * 3, y * row, (y + 1) * row);
  return out;
}

/** Decodes, letterboxes and normalizes one image into the network's CHW float32 input. */
export async function letterboxTensor(
  bytes: Uint8Array,
  inputSize: [number, number],
  norm: { mean: [number, number, number]; std: [number, number, number] },
  mode: LetterboxMode = 'predict',
  layout: InputLayout = 'float32-nchw',
): Promise<{ tensor: Float32Array | Uint8Array; pixels: Buffer; original: { width: number; height: number }; geometry: Letterbox }> {
  let lb;
  try {
    lb = await letterbox(bytes, inputSize, mode);
  } catch (err) {
    throw ImageDecodeError.of(err, bytes);
  }
  const tensor = layout === 'uint8-nhwc' ? lb.pixels : hwcToChw(lb.pixels, inputSize[0] * inputSize[1], norm.mean, norm.std);
  return { tensor, pixels: lb.pixels, original: lb.original, geometry: lb.geometry };
}

/**
 * What a picture of the predictions is drawn on: the image's own pixels where they lie in its
 * letterboxed ones (a window, rows `stride` bytes apart, not a copy) when the letterbox placed it
 * without resampling, so that it is neither decoded a second time nor copied (a copy was 0.9 MB
 * more garbage per 640x480 picture); else its encoded bytes. The window shares the letterboxed
 * buffer: drawing changes it, so draw once the network has read it and before the buffer is freed
 * or given back to `pixelBuffers`.
 */
export function pictureSource(
  bytes: Uint8Array,
  letterboxed: Uint8Array | undefined,
  g: Letterbox,
  original: { width: number; height: number },
): Uint8Array | { data: Buffer; width: number; height: number; stride: number } {
  if (!letterboxed || g.width !== original.width || g.height !== original.height) return bytes;
  const stride = (g.left + g.width + g.right) * 3;
  const first = letterboxed.byteOffset + g.top * stride + g.left * 3;
  return { data: Buffer.from(letterboxed.buffer, first, (g.height - 1) * stride + g.width * 3), width: g.width, height: g.height, stride };
}

/**
 * A point in network pixels back in the original image, clipped to it: scale_coords (and each
 * corner of scale_boxes), in float32 as Ultralytics' tensors compute it.
 */
export function pointToOriginal(x: number, y: number, g: Letterbox, original: { width: number; height: number }): [number, number] {
  const clip = (v: number, max: number) => Math.min(Math.max(v, 0), max);
  return [clip(f32(f32(x - g.left) / f32(g.gainX)), original.width), clip(f32(f32(y - g.top) / f32(g.gainY)), original.height)];
}

/** Boxes [x1, y1, x2, y2] from network pixels back to the original image, clipped to it (scale_boxes). */
export function scaleBoxes(
  boxes: ReadonlyArray<ArrayLike<number>>,
  g: Letterbox,
  original: { width: number; height: number },
): Array<[number, number, number, number]> {
  return boxes.map((b) => [...pointToOriginal(b[0]!, b[1]!, g, original), ...pointToOriginal(b[2]!, b[3]!, g, original)]);
}
