import { decodeMask, encodeMask, rleArea, rleFromString, rleIou, rleToBbox, rleToString } from '../../src/runner/segmentation/rle.ts';
import { rng } from '../../src/samples/images.ts';
import { rleFromPolygons } from '../../src/runner/segmentation/polygon.ts';
import { pycocotoolsMasks, pycocotoolsPolygons } from '../support/pycocotools.ts';

const H = 17;
const W = 23;

function randomMask(r: () => number, kind: number): number[] {
  const m = new Array<number>(H * W).fill(0);
  if (kind === 0) return m; // empty
  if (kind === 1) return m.fill(1); // full
  if (kind === 2) {
    for (let i = 0; i < m.length; i++) m[i] = r() < 0.3 ? 1 : 0; // noise
    return m;
  }
  // a few rectangles, some touching the borders
  for (let n = 0; n < 1 + Math.floor(r() * 3); n++) {
    const x0 = Math.floor(r() * W);
    const y0 = Math.floor(r() * H);
    const x1 = Math.min(W, x0 + 1 + Math.floor(r() * W));
    const y1 = Math.min(H, y0 + 1 + Math.floor(r() * H));
    for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) m[y * W + x] = 1;
  }
  return m;
}

describe('COCO RLE (pycocotools maskApi)', () => {
  it('encodes column-major, starting with a run of zeros', () => {
    // 2x3 row-major [[0,1,1],[1,1,0]] -> column-major 0,1 | 1,1 | 1,0 -> runs 1,4,1
    expect(encodeMask([0, 1, 1, 1, 1, 0], 2, 3)).toEqual({ size: [2, 3], counts: [1, 4, 1] });
    expect(encodeMask([1, 1], 1, 2).counts).toEqual([0, 2]);
  });

  it('equals pycocotools.mask: compressed strings, areas, boxes and IoU with crowds', () => {
    const r = rng(2024);
    const dts = Array.from({ length: 12 }, (_, i) => randomMask(r, i < 1 ? 0 : i < 2 ? 1 : i < 4 ? 2 : 3));
    const gts = Array.from({ length: 9 }, (_, i) => randomMask(r, i === 0 ? 2 : 3));
    const iscrowd = gts.map((_, i) => (i % 4 === 1 ? 1 : 0));
    const ref = pycocotoolsMasks({ height: H, width: W, dts, gts, iscrowd });
    const ours = [...dts, ...gts].map((m) => encodeMask(m, H, W));
    expect(ours.map(rleToString)).toEqual(ref.strings);
    expect(ours.map(rleArea)).toEqual(ref.areas);
    expect(ours.map(rleToBbox)).toEqual(ref.boxes);
    const iou = rleIou(ours.slice(0, dts.length), ours.slice(dts.length), iscrowd.map(Boolean));
    iou.forEach((row, d) => row.forEach((v, g) => expect(v).toBeCloseTo(ref.ious[d]![g]!, 14)));
    // Round trips: string -> counts -> mask.
    ref.strings.forEach((s, i) => {
      expect(rleFromString(s, H, W)).toEqual(ours[i]);
      expect([...decodeMask(ours[i]!)]).toEqual([...dts, ...gts][i]);
    });
    // Something in the matrix is partial overlap, something is crowd-divided.
    expect(iou.flat().some((v) => v > 0 && v < 1)).toBe(true);
  });

  it('round-trips large counts and negative deltas through the compressed form', () => {
    const rle = { size: [4000, 3000] as [number, number], counts: [5_999_000, 1000, 3, 11_999_000 - 5_999_003 - 1000, 0] };
    expect(rleFromString(rleToString(rle), 4000, 3000)).toEqual(rle);
  });
});

describe('COCO polygons (pycocotools frPyObjects + merge)', () => {
  it('rasterizes polygons exactly as pycocotools, including fractional, outside and multi-part ones', () => {
    const h = 31;
    const w = 27;
    const r = rng(77);
    const objects: number[][][] = [
      [[2, 2, 20, 2, 20, 12, 2, 12]], // axis-aligned rectangle
      [[3.3, 4.7, 18.2, 6.1, 11.5, 25.9]], // triangle with fractional vertices
      [[-4, -3, 10, -2, 12, 9, -1, 11]], // partly outside the image
      [
        [1, 1, 6, 1, 6, 6, 1, 6],
        [14, 15, 24, 15, 24, 29, 14, 29],
      ], // two parts
      [[5, 5, 5.2, 5.1, 5.1, 5.3]], // smaller than a pixel
      ...Array.from({ length: 6 }, () => [Array.from({ length: 2 * (3 + Math.floor(r() * 6)) }, (_, i) => (i % 2 === 0 ? r() * w : r() * h))]),
    ];
    const ref = pycocotoolsPolygons({ height: h, width: w, objects });
    objects.forEach((polygons, i) => {
      const rle = rleFromPolygons(polygons, h, w);
      expect({ i, counts: rleToString(rle), area: rleArea(rle) }).toEqual({ i, ...ref[i]! });
    });
  });
});
