// COCO polygons to RLE exactly as pycocotools rasterizes them (maskApi.c rleFrPoly: boundary
// points upsampled 5x, downsampled on the y-boundary), and annToRLE's union of an object's polygons.
// A polygon mask drawn any other way differs at the border by a pixel here and there, which moves
// mask IoU and so segm mAP.
import { decodeMask, encodeMask, type Rle } from './rle.ts';

/** rleFrPoly: one polygon [x1, y1, x2, y2, ...] in an h x w image. */
export function rleFromPolygon(xy: number[], h: number, w: number): Rle {
  const k = Math.floor(xy.length / 2);
  const scale = 5;
  // C's (int) cast truncates toward zero.
  const x = Array.from({ length: k + 1 }, (_, j) => Math.trunc(scale * xy[(j % k) * 2]! + 0.5));
  const y = Array.from({ length: k + 1 }, (_, j) => Math.trunc(scale * xy[(j % k) * 2 + 1]! + 0.5));
  const u: number[] = [];
  const v: number[] = [];
  for (let j = 0; j < k; j++) {
    let xs = x[j]!;
    let xe = x[j + 1]!;
    let ys = y[j]!;
    let ye = y[j + 1]!;
    const dx = Math.abs(xe - xs);
    const dy = Math.abs(ys - ye);
    const flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
    if (flip) [xs, xe, ys, ye] = [xe, xs, ye, ys];
    const s = dx >= dy ? (ye - ys) / dx : (xe - xs) / dy;
    if (dx >= dy) {
      for (let d = 0; d <= dx; d++) {
        const t = flip ? dx - d : d;
        u.push(t + xs);
        v.push(Math.trunc(ys + s * t + 0.5));
      }
    } else {
      for (let d = 0; d <= dy; d++) {
        const t = flip ? dy - d : d;
        v.push(t + ys);
        u.push(Math.trunc(xs + s * t + 0.5));
      }
    }
  }
  // Points along the y-boundary, downsampled.
  const a: number[] = [];
  for (let j = 1; j < u.length; j++) {
    if (u[j] === u[j - 1]) continue;
    let xd = u[j]! < u[j - 1]! ? u[j]! : u[j]! - 1;
    xd = (xd + 0.5) / scale - 0.5;
    if (Math.floor(xd) !== xd || xd < 0 || xd > w - 1) continue;
    let yd = v[j]! < v[j - 1]! ? v[j]! : v[j - 1]!;
    yd = (yd + 0.5) / scale - 0.5;
    yd = Math.ceil(yd < 0 ? 0 : yd > h ? h : yd);
    a.push(xd * h + yd);
  }
  a.push(h * w);
  a.sort((p, q) => p - q);
  let previous = 0;
  for (let j = 0; j < a.length; j++) {
    const t = a[j]!;
    a[j] = t - previous;
    previous = t;
  }
  const counts: number[] = [a[0]!];
  for (let j = 1; j < a.length;) {
    if (a[j]! > 0) counts.push(a[j++]!);
    else {
      j++;
      if (j < a.length) counts[counts.length - 1]! += a[j++]!;
    }
  }
  return { size: [h, w], counts };
}

/** Union of masks of the same size (rleMerge with intersect=0). */
export function rleUnion(rles: Rle[]): Rle {
  if (rles.length === 1) return rles[0]!;
  const [h, w] = rles[0]!.size;
  const union = new Uint8Array(h * w);
  for (const rle of rles) {
    const m = decodeMask(rle);
    for (let i = 0; i < m.length; i++) union[i] ||= m[i]!;
  }
  return encodeMask(union, h, w);
}

/** annToRLE for polygon lists: each polygon rasterized, then their union. */
export function rleFromPolygons(polygons: number[][], h: number, w: number): Rle {
  if (polygons.length === 0) return { size: [h, w], counts: [h * w] };
  return rleUnion(polygons.map((p) => rleFromPolygon(p, h, w)));
}
