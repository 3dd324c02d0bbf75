// Pictures of predictions: boxes with class and confidence, instance masks as translucent fills,
// pose skeletons, semantic class maps blended over the image. The image is decoded once, drawn on
// in place (canvas.ts, labels from cached glyphs) and written as JPEG.
import { CLASS_PALETTE, COCO_SKELETON, type DetectedObject } from '../../contract/index.ts';
import { decodeRgb, jpegEncoder, ON_THREAD_MAX_PIXELS } from '../image/decode-rgb.ts';
import { loadSharp } from '../image/sharp-loader.ts';
import { windowOf } from '../classification/pil-resize.ts';
import { rleFromString } from '../segmentation/rle.ts';
import { RgbCanvas, type Rgb } from './canvas.ts';
import { fontMetrics, GlyphCache } from './glyphs.ts';

const PALETTE: Rgb[] = CLASS_PALETTE.map((hex) => [parseInt(hex.slice(0, 2), 16), parseInt(hex.slice(2, 4), 16), parseInt(hex.slice(4, 6), 16)]);

/** A class id's colour (contract/drawing.ts's palette, as the dashboard draws it). */
const classColor = (id: number): Rgb => PALETTE[id % PALETTE.length]!;

const WHITE: Rgb = [255, 255, 255];
/** Opacity of an instance mask's fill and of a semantic class map, of 255. */
const MASK_ALPHA = 110;
const CLASS_MAP_ALPHA = 128;

const glyphCache = new GlyphCache();

/** An image's decoded pixels (HWC RGB, oriented), when the caller has them already; drawing changes them. */
export interface RgbPixels {
  data: Buffer;
  width: number;
  height: number;
  /** Bytes from one row to the next, when the pixels are a window of a wider image (default width x 3). */
  stride?: number;
}

async function decode(image: Uint8Array | RgbPixels): Promise<RgbCanvas> {
  if (!(image instanceof Uint8Array)) return new RgbCanvas(image.data, image.width, image.height, image.stride);
  const { data, width, height } = await decodeRgb(image);
  return new RgbCanvas(data, width, height);
}

// libjpeg-turbo's encoder where it loads: half of sharp's CPU for a 640x480 picture (1.1 vs 2.1 ms on
// the bench machine; libvips adds its pipeline and a thread hand-off to each). Either way quality
// 85, 4:2:0, without optimised Huffman tables (a second pass over the coefficients, twice the CPU
// for files about 3% smaller).
const encode = async (canvas: RgbCanvas): Promise<Buffer> =>
  (canvas.width * canvas.height <= ON_THREAD_MAX_PIXELS ? jpegEncoder()?.encodeRgb(canvas.data, canvas.width, canvas.height, 85, canvas.stride) : undefined) ??
  // A large picture: sharp, off the event loop.
  (await loadSharp())(unstrided(canvas), { raw: { width: canvas.width, height: canvas.height, channels: 3 } })
    .jpeg({ quality: 85, optimiseCoding: false })
    .toBuffer();

/** The canvas's pixels in rows with nothing between them, as sharp's raw input takes them: a window's are copied. */
const unstrided = (c: RgbCanvas): Uint8Array =>
  c.stride === c.width * 3 ? c.data : windowOf(c.data, c.stride / 3, { left: 0, top: 0, width: c.width, height: c.height });

/** An RLE mask (COCO, column-major) filled over the canvas, run by run. */
function fillMask(canvas: RgbCanvas, mask: { size: [number, number]; counts: string }, colour: Rgb): void {
  const rle = rleFromString(mask.counts, mask.size[0], mask.size[1]);
  const [h, w] = rle.size;
  if (h !== canvas.height || w !== canvas.width) return; // not this image's mask: nothing sensible to draw
  let p = 0;
  rle.counts.forEach((run, i) => {
    if (i % 2 === 1) for (let q = p; q < p + run; q++) canvas.blendPixel(Math.floor(q / h), q % h, colour, MASK_ALPHA);
    p += run;
  });
}

/** "name 0.87" on a box of the class colour, above the box's top-left corner (inside it when there is no room). */
async function drawLabel(canvas: RgbCanvas, text: string, x: number, y: number, px: number, colour: Rgb): Promise<void> {
  const glyphs = await glyphCache.glyphs(text, px);
  const m = fontMetrics(px);
  const width = glyphs.reduce((sum, g) => sum + g.advance, 0) + 2;
  const top = Math.round(y > m.height ? y - m.height : y);
  const left = Math.round(x);
  canvas.fillRect(left, top, left + width, top + m.height, colour);
  let at = left + 1;
  for (const g of glyphs) at = canvas.glyph(g, at, top, WHITE);
}

/** A picture of the detections over the image: its encoded bytes, or its pixels where they were decoded already. */
export async function drawObjects(image: Uint8Array | RgbPixels, detections: DetectedObject[], keypointCount?: number): Promise<Buffer> {
  const canvas = await decode(image);
  await paintObjects(canvas, detections, keypointCount);
  return encode(canvas);
}

/** A class-id map blended half over the image (class 0, usually background, left clear). */
export async function drawClassMap(image: Uint8Array | RgbPixels, classMap: Uint8Array | Uint16Array, width: number, height: number): Promise<Buffer> {
  const canvas = await decode(image);
  paintClassMap(canvas, classMap, width, height);
  return encode(canvas);
}

/** drawObjects on decoded pixels: masks, then boxes with labels and skeletons, the most confident on top. */
export async function paintObjects(canvas: RgbCanvas, detections: DetectedObject[], keypointCount?: number): Promise<void> {
  const { width, height } = canvas;
  for (const d of detections) if (d.mask) fillMask(canvas, d.mask, classColor(d.class_id));
  const stroke = Math.max(1, Math.round(Math.min(width, height) / 200));
  const font = Math.max(10, Math.round(Math.min(width, height) / 30));
  // The most confident last, on top.
  for (const d of [...detections].reverse()) {
    const [x1, y1, x2, y2] = d.bbox;
    const colour = classColor(d.class_id);
    canvas.strokeRect(x1, y1, x2, y2, stroke, colour);
    await drawLabel(canvas, `${d.class_name} ${d.confidence.toFixed(2)}`, x1, y1, font, colour);
    if (d.keypoints) {
      const k = d.keypoints;
      const at = (i: number) => ({ x: k[3 * i]!, y: k[3 * i + 1]!, ok: k[3 * i + 2]! >= 0.5 });
      if (keypointCount === 17) {
        for (const [a, b] of COCO_SKELETON) {
          const p = at(a - 1);
          const q = at(b - 1);
          if (p.ok && q.ok) canvas.line(p.x, p.y, q.x, q.y, stroke, colour);
        }
      }
      for (let i = 0; i < k.length / 3; i++) {
        const p = at(i);
        if (!p.ok) continue;
        // A dot of the class colour ringed in white.
        canvas.disc(p.x, p.y, stroke + 1.5, WHITE);
        canvas.disc(p.x, p.y, stroke + 0.5, colour);
      }
    }
  }
}

export function paintClassMap(canvas: RgbCanvas, classMap: Uint8Array | Uint16Array, width: number, height: number): void {
  if (canvas.width !== width || canvas.height !== height) throw new Error(`class map is ${width}x${height}, the image ${canvas.width}x${canvas.height}`);
  for (let y = 0, i = 0; y < height; y++) {
    for (let x = 0; x < width; x++, i++) {
      const c = classMap[i]!;
      if (c !== 0) canvas.blendPixel(x, y, classColor(c), CLASS_MAP_ALPHA);
    }
  }
}
