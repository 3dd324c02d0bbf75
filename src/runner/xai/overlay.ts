// What an explanation leaves behind: the map as a .npy file (float32 [H, W] at the network input's
// resolution), the overlay (the JET heat map blended half and half over the original image, as
// pytorch-grad-cam's show_cam_on_image with image_weight 0.5, at the original's size), and the
// regions where the map is high, in original pixels.
import { decodeRgb } from '../image/decode-rgb.ts';
import { loadSharp } from '../image/sharp-loader.ts';

/** How a network-input pixel and an original pixel correspond for one image. */
export interface XaiGeometry {
  original: { width: number; height: number };
  input: { width: number; height: number };
  /** The network-input position (continuous pixel coordinates) of an original pixel's centre, or null when it was cropped away. */
  toNetwork(x: number, y: number): [number, number] | null;
  /** An original-image position of a network-input position. */
  toOriginal(x: number, y: number): [number, number];
}

/** A .npy (format 1.0) file of a float32 C-order array. */
export function npy(data: Float32Array, shape: number[]): Uint8Array {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const preamble = 10;
  header = header.padEnd(Math.ceil((preamble + header.length + 1) / 64) * 64 - preamble - 1, ' ') + '\n';
  const out = new Uint8Array(preamble + header.length + data.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, header.length & 0xff, header.length >> 8]);
  out.set(new TextEncoder().encode(header), preamble);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), preamble + header.length);
  return out;
}

/** The JET colour map (MATLAB's, as OpenCV's COLORMAP_JET approximates it) of a value in [0, 1], as RGB bytes. */
export function jet(v: number): [number, number, number] {
  const c = (x: number) => Math.round(255 * Math.min(1, Math.max(0, x)));
  const t = Math.min(1, Math.max(0, v));
  return [c(1.5 - Math.abs(4 * t - 3)), c(1.5 - Math.abs(4 * t - 2)), c(1.5 - Math.abs(4 * t - 1))];
}

/** The map's value at a continuous network-input position (bilinear, clamped at the borders). */
function sample(map: Float32Array, width: number, height: number, x: number, y: number): number {
  const fx = Math.min(Math.max(x - 0.5, 0), width - 1);
  const fy = Math.min(Math.max(y - 0.5, 0), height - 1);
  const x0 = Math.floor(fx);
  const y0 = Math.floor(fy);
  const x1 = Math.min(x0 + 1, width - 1);
  const y1 = Math.min(y0 + 1, height - 1);
  const lx = fx - x0;
  const ly = fy - y0;
  return (1 - ly) * ((1 - lx) * map[y0 * width + x0]! + lx * map[y0 * width + x1]!) + ly * ((1 - lx) * map[y1 * width + x0]! + lx * map[y1 * width + x1]!);
}

/** The overlay as JPEG bytes: show_cam_on_image(original / 255, map at the original's size, use_rgb=True). */
export async function overlay(imageBytes: Uint8Array, map: Float32Array, g: XaiGeometry): Promise<Buffer> {
  const { data, width, height } = await decodeRgb(imageBytes);
  const blended = new Float32Array(width * height * 3);
  let max = 0;
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const at = g.toNetwork((x + 0.5) * (g.original.width / width), (y + 0.5) * (g.original.height / height));
      const v = at ? sample(map, g.input.width, g.input.height, at[0], at[1]) : 0;
      const heat = jet(Math.floor(255 * v) / 255);
      for (let c = 0; c < 3; c++) {
        const i = (y * width + x) * 3 + c;
        const value = 0.5 * (heat[c]! / 255) + 0.5 * (data[i]! / 255);
        blended[i] = value;
        if (value > max) max = value;
      }
    }
  const bytes = Buffer.alloc(width * height * 3);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor((255 * blended[i]!) / (max || 1));
  return (await loadSharp())(bytes, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: 90 })
    .toBuffer();
}

/**
 * Connected regions of the map at or above `threshold` (network pixels), as boxes in original
 * pixels scored by the mean map value inside the box, best first.
 */
export function topRegions(
  map: Float32Array,
  g: XaiGeometry,
  threshold = 0.5,
  limit = 5,
): Array<{ x: number; y: number; w: number; h: number; score: number }> {
  const { width, height } = g.input;
  const seen = new Uint8Array(width * height);
  const stack = new Int32Array(width * height);
  const boxes: Array<{ x: number; y: number; w: number; h: number; score: number }> = [];
  for (let start = 0; start < map.length; start++) {
    if (seen[start] || map[start]! < threshold) continue;
    let [x0, y0, x1, y1] = [width, height, 0, 0];
    let top = 0;
    stack[top++] = start;
    seen[start] = 1;
    while (top > 0) {
      const i = stack[--top]!;
      const x = i % width;
      const y = (i - x) / width;
      if (x < x0) x0 = x;
      if (y < y0) y0 = y;
      if (x + 1 > x1) x1 = x + 1;
      if (y + 1 > y1) y1 = y + 1;
      for (let k = 0; k < 4; k++) {
        const j =
          k === 0 ? (x > 0 ? i - 1 : -1) : k === 1 ? (x < width - 1 ? i + 1 : -1) : k === 2 ? (y > 0 ? i - width : -1) : y < height - 1 ? i + width : -1;
        if (j >= 0 && !seen[j] && map[j]! >= threshold) {
          seen[j] = 1;
          stack[top++] = j;
        }
      }
    }
    let sum = 0;
    for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) sum += map[y * width + x]!;
    const [ox0, oy0] = g.toOriginal(x0, y0);
    const [ox1, oy1] = g.toOriginal(x1, y1);
    const clip = (v: number, max: number) => Math.min(Math.max(v, 0), max);
    const [bx0, by0, bx1, by1] = [clip(ox0, g.original.width), clip(oy0, g.original.height), clip(ox1, g.original.width), clip(oy1, g.original.height)];
    if (bx1 <= bx0 || by1 <= by0) continue;
    boxes.push({ x: bx0, y: by0, w: bx1 - bx0, h: by1 - by0, score: sum / ((x1 - x0) * (y1 - y0)) });
  }
  return boxes.sort((a, b) => b.score - a.score).slice(0, limit);
}
