// Pictures of predictions: boxes with class and confidence, instance masks as translucent fills,
// pose skeletons, semantic class maps blended over the image. Drawn with sharp (SVG overlays and a
// raw RGBA layer), written as JPEG.
import sharp, { type OverlayOptions } from 'sharp';
import { classHex, COCO_SKELETON, type DetectedObject } from '../../contract/index.ts';
import { decodeMask, rleFromString } from '../segmentation/rle.ts';

export const classColor = (id: number): [number, number, number] => {
  const hex = classHex(id);
  return [parseInt(hex.slice(0, 2), 16), parseInt(hex.slice(2, 4), 16), parseInt(hex.slice(4, 6), 16)];
};

const escapeXml = (s: string) => s.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);

export async function drawObjects(bytes: Uint8Array, detections: DetectedObject[], keypointCount?: number): Promise<Buffer> {
  const image = sharp(bytes, { autoOrient: true });
  const meta = await image.metadata();
  const width = meta.autoOrient?.width ?? meta.width!;
  const height = meta.autoOrient?.height ?? meta.height!;
  const layers: OverlayOptions[] = [];
  if (detections.some((d) => d.mask)) {
    const rgba = Buffer.alloc(width * height * 4);
    for (const d of detections) {
      if (!d.mask) continue;
      const m = decodeMask(rleFromString(d.mask.counts, d.mask.size[0], d.mask.size[1]));
      const [r, g, b] = classColor(d.class_id);
      for (let i = 0; i < m.length; i++) if (m[i]) rgba.set([r, g, b, 110], i * 4);
    }
    layers.push({ input: rgba, raw: { width, height, channels: 4 } });
  }
  const stroke = Math.max(1, Math.round(Math.min(width, height) / 200));
  const font = Math.max(10, Math.round(Math.min(width, height) / 30));
  const parts: string[] = [];
  for (const d of [...detections].reverse()) {
    const [x1, y1, x2, y2] = d.bbox;
    const colour = `rgb(${classColor(d.class_id).join(',')})`;
    const label = `${escapeXml(d.class_name)} ${d.confidence.toFixed(2)}`;
    parts.push(`<rect x="${x1}" y="${y1}" width="${x2 - x1}" height="${y2 - y1}" fill="none" stroke="${colour}" stroke-width="${stroke}"/>`);
    const ty = y1 > font + 2 ? y1 - 2 : y1 + font;
    parts.push(`<rect x="${x1}" y="${ty - font}" width="${label.length * font * 0.6}" height="${font + 2}" fill="${colour}"/>`);
    parts.push(`<text x="${x1 + 1}" y="${ty - 1}" font-family="sans-serif" font-size="${font}" fill="white">${label}</text>`);
    if (d.keypoints) {
      const k = d.keypoints;
      const at = (i: number) => ({ x: k[3 * i]!, y: k[3 * i + 1]!, ok: k[3 * i + 2]! >= 0.5 });
      if (keypointCount === 17) {
        for (const [a, b] of COCO_SKELETON) {
          const p = at(a! - 1);
          const q = at(b! - 1);
          if (p.ok && q.ok) parts.push(`<line x1="${p.x}" y1="${p.y}" x2="${q.x}" y2="${q.y}" stroke="${colour}" stroke-width="${stroke}"/>`);
        }
      }
      for (let i = 0; i < k.length / 3; i++) {
        const p = at(i);
        if (p.ok) parts.push(`<circle cx="${p.x}" cy="${p.y}" r="${stroke + 1}" fill="${colour}" stroke="white"/>`);
      }
    }
  }
  layers.push({ input: Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${parts.join('')}</svg>`) });
  return image.removeAlpha().composite(layers).jpeg({ quality: 85 }).toBuffer();
}

/** A class-id map blended half over the image (class 0, usually background, left clear). */
export async function drawClassMap(bytes: Uint8Array, classMap: Uint8Array | Uint16Array, width: number, height: number): Promise<Buffer> {
  const rgba = Buffer.alloc(width * height * 4);
  for (let i = 0; i < classMap.length; i++) {
    const c = classMap[i]!;
    if (c === 0) continue;
    rgba.set([...classColor(c), 128], i * 4);
  }
  return sharp(bytes, { autoOrient: true })
    .removeAlpha()
    .composite([{ input: rgba, raw: { width, height, channels: 4 } }])
    .jpeg({ quality: 85 })
    .toBuffer();
}
