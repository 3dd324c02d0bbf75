// COCO run-length encoding of binary masks, ported from pycocotools' maskApi.c so that masks,
// areas, boxes, mask IoU and the compressed strings in COCO JSON are exactly pycocotools'.
// Masks are column-major (Fortran order: pixel (y, x) at x * h + y); counts alternate runs of
// 0s and 1s, starting with 0s.
import { rleFromString, type Rle } from '../../contract/coco-rle.ts';

export { rleFromString, type Rle };

/** rleEncode: a binary mask given row-major (as decoded images are) to RLE. */
export function encodeMask(mask: ArrayLike<number>, height: number, width: number): Rle {
  if (mask.length !== height * width) throw new Error(`mask has ${mask.length} pixels, expected ${height}x${width}`);
  const counts: number[] = [];
  let previous = 0;
  let run = 0;
  for (let x = 0; x < width; x++) {
    for (let y = 0; y < height; y++) {
      const v = mask[y * width + x] ? 1 : 0;
      if (v !== previous) {
        counts.push(run);
        run = 0;
        previous = v;
      }
      run++;
    }
  }
  counts.push(run);
  return { size: [height, width], counts };
}

/** rleDecode: back to a row-major 0/1 mask. */
export function decodeMask(rle: Rle): Uint8Array {
  const [h, w] = rle.size;
  const out = new Uint8Array(h * w);
  let p = 0;
  let v = 0;
  for (const c of rle.counts) {
    for (let i = 0; i < c; i++, p++) if (v) out[(p % h) * w + Math.floor(p / h)] = 1;
    v ^= 1;
  }
  return out;
}

/** rleArea: the number of 1 pixels. */
export function rleArea(rle: Rle): number {
  let a = 0;
  for (let i = 1; i < rle.counts.length; i += 2) a += rle.counts[i]!;
  return a;
}

/** rleToBbox: [x, y, w, h] of the mask (a run crossing a column spans the full height, as in C). */
export function rleToBbox(rle: Rle): [number, number, number, number] {
  const [h, w] = rle.size;
  const m = Math.floor(rle.counts.length / 2) * 2;
  if (m === 0) return [0, 0, 0, 0];
  let xs = w;
  let ys = h;
  let xe = 0;
  let ye = 0;
  let cc = 0;
  let xp = 0;
  for (let j = 0; j < m; j++) {
    cc += rle.counts[j]!;
    const t = cc - (j % 2);
    const y = t % h;
    const x = (t - y) / h;
    if (j % 2 === 0) xp = x;
    else if (xp < x) {
      ys = 0;
      ye = h - 1;
    }
    xs = Math.min(xs, x);
    xe = Math.max(xe, x);
    ys = Math.min(ys, y);
    ye = Math.max(ye, y);
  }
  return [xs, ys, xe - xs + 1, ye - ys + 1];
}

/**
 * rleIou: rows = detections, columns = ground truths. Pairs whose boxes do not overlap are 0
 * without looking at the masks (as in C); a crowd ground truth divides by the detection's area;
 * masks of different sizes give -1.
 */
export function rleIou(dts: Rle[], gts: Rle[], iscrowd: boolean[]): number[][] {
  const db = dts.map(rleToBbox);
  const gb = gts.map(rleToBbox);
  return dts.map((dt, d) =>
    gts.map((gt, g) => {
      const D = db[d]!;
      const G = gb[g]!;
      const bw = Math.min(D[2] + D[0], G[2] + G[0]) - Math.max(D[0], G[0]);
      const bh = Math.min(D[3] + D[1], G[3] + G[1]) - Math.max(D[1], G[1]);
      if (bw <= 0 || bh <= 0) return 0;
      if (dt.size[0] !== gt.size[0] || dt.size[1] !== gt.size[1]) return -1;
      let ca = dt.counts[0]!;
      let cb = gt.counts[0]!;
      let a = 1;
      let b = 1;
      let va = false;
      let vb = false;
      let inter = 0;
      let union = 0;
      for (let ct = 1; ct > 0;) {
        const c = Math.min(ca, cb);
        if (va || vb) {
          union += c;
          if (va && vb) inter += c;
        }
        ct = 0;
        ca -= c;
        if (!ca && a < dt.counts.length) {
          ca = dt.counts[a++]!;
          va = !va;
        }
        ct += ca;
        cb -= c;
        if (!cb && b < gt.counts.length) {
          cb = gt.counts[b++]!;
          vb = !vb;
        }
        ct += cb;
      }
      if (inter === 0) union = 1;
      else if (iscrowd[g]) union = rleArea(dt);
      return inter / union;
    }),
  );
}

/** rleToString: COCO's compressed counts (LEB128-like, 6 bits a character from '0'). */
export function rleToString(rle: Rle): string {
  let s = '';
  rle.counts.forEach((count, i) => {
    let x = i > 2 ? count - rle.counts[i - 2]! : count;
    for (let more = true; more;) {
      let c = x & 0x1f;
      x = Math.floor(x / 32); // arithmetic shift, also for negative deltas
      more = c & 0x10 ? x !== -1 : x !== 0;
      if (more) c |= 0x20;
      s += String.fromCharCode(c + 48);
    }
  });
  return s;
}
