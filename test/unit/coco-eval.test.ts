import { cocoEvaluate, linspace, type CocoDetection, type CocoEvalResult, type CocoGroundTruth } from '../../src/runner/detection/coco-eval.ts';
import { encodeMask, rleArea, rleToBbox, rleToString, type Rle } from '../../src/runner/segmentation/rle.ts';
import { rng } from '../../src/samples/images.ts';
import { pycocotoolsEvaluate, type ReferenceCase } from '../support/pycocotools.ts';

type Box = [number, number, number, number];
const gt = (id: number, image_id: number, category_id: number, bbox: Box, extra: Partial<CocoGroundTruth> = {}): CocoGroundTruth => ({
  id,
  image_id,
  category_id,
  bbox,
  area: bbox[2] * bbox[3],
  iscrowd: 0,
  ...extra,
});
const dt = (image_id: number, category_id: number, bbox: Box, score: number): CocoDetection => ({ image_id, category_id, bbox, score });

interface Case {
  name: string;
  images: number[];
  categories: number[];
  gts: CocoGroundTruth[];
  dts: CocoDetection[];
}

/** Every summary number and every per-category value within 1e-12 of pycocotools', naming the first that is not. */
function expectSameAsPycocotools(name: string, ours: CocoEvalResult, ref: CocoEvalResult): void {
  ours.stats.forEach((s, j) => {
    if (Math.abs(s - ref.stats[j]!) > 1e-12) throw new Error(`${name}: stat ${j} is ${s}, pycocotools ${ref.stats[j]}`);
  });
  ours.perCategory.forEach((pc, k) => {
    for (const f of ['ap', 'ap50', 'recall'] as const) {
      if (Math.abs(pc[f] - ref.perCategory[k]![f]) > 1e-12)
        throw new Error(`${name}: category ${pc.category_id} ${f} is ${pc[f]}, pycocotools ${ref.perCategory[k]![f]}`);
    }
    // The precision-recall curve: E.eval['precision'][0, :, k, 0, -1], point by point.
    const curve = ref.perCategory[k]!.pr50;
    if (pc.pr50.length !== curve.length || pc.pr50.some((v, r) => Math.abs(v - curve[r]!) > 1e-12))
      throw new Error(`${name}: category ${pc.category_id} precision-recall curve differs from pycocotools' (${pc.pr50.length} vs ${curve.length} points)`);
  });
}

const evaluate = (c: Case) => cocoEvaluate(c.gts, c.dts, { imgIds: c.images, catIds: c.categories });
const toReference = (c: Case): ReferenceCase => ({
  gt: { info: {}, images: c.images.map((id) => ({ id })), categories: c.categories.map((id) => ({ id, name: `c${id}` })), annotations: c.gts },
  dt: c.dts,
});

// Hand-worked cases: the expected numbers are reasoned out in the comments, and pycocotools agrees.
const handWorked: Array<Case & { expect: (r: ReturnType<typeof evaluate>) => void }> = [
  {
    name: 'a perfect detection',
    images: [1],
    categories: [1],
    gts: [gt(1, 1, 1, [10, 10, 50, 50])],
    dts: [dt(1, 1, [10, 10, 50, 50], 0.9)],
    // Precision is tp / (tp + fp + eps) in pycocotools: "1" is 0.9999999999999999.
    expect: (r) => {
      for (const s of r.stats.slice(0, 3)) expect(s).toBeCloseTo(1, 12);
      expect(r.stats[3]).toBe(-1); // no small objects
      expect(r.stats[4]).toBeCloseTo(1, 12); // 2500 px: medium
    },
  },
  {
    name: 'IoU exactly 0.9 counts at "0.90" (the threshold is 0.8999999999999999)',
    images: [1],
    categories: [1],
    gts: [gt(1, 1, 1, [0, 0, 100, 100])],
    dts: [dt(1, 1, [0, 0, 100, 90], 0.9)],
    // Matches at .50 ... .90, not at .95: AP = 9 of 10 thresholds.
    expect: (r) => expect(r.stats[0]).toBeCloseTo(0.9, 12),
  },
  {
    name: 'a duplicate detection is a false positive after the first match',
    images: [1],
    categories: [1],
    gts: [gt(1, 1, 1, [0, 0, 100, 100])],
    dts: [dt(1, 1, [0, 0, 100, 100], 0.9), dt(1, 1, [1, 1, 100, 100], 0.8)],
    // Precision stays 1 up to recall 1 (the duplicate comes after full recall): AP50 = 1.
    expect: (r) => expect(r.stats[1]).toBeCloseTo(1, 12),
  },
  {
    name: 'detections inside a crowd region are ignored, not false positives',
    images: [1],
    categories: [1],
    gts: [gt(1, 1, 1, [0, 0, 40, 40]), gt(2, 1, 1, [100, 100, 200, 200], { iscrowd: 1 })],
    dts: [dt(1, 1, [120, 120, 30, 30], 0.95), dt(1, 1, [150, 150, 30, 30], 0.9), dt(1, 1, [0, 0, 40, 40], 0.5)],
    expect: (r) => expect(r.stats[1]).toBeCloseTo(1, 12),
  },
  {
    name: 'an empty image with a detection, and a class without ground truth',
    images: [1, 2],
    categories: [1, 2],
    gts: [gt(1, 1, 1, [0, 0, 50, 50])],
    dts: [dt(2, 1, [0, 0, 50, 50], 0.99), dt(1, 1, [0, 0, 50, 50], 0.5), dt(1, 2, [0, 0, 50, 50], 0.9)],
    // Class 1: a false positive ranks above the true one: precision 0.5 at recall 1, AP = 0.5.
    // Class 2 has no ground truth: -1, left out of the mean.
    expect: (r) => {
      expect(r.stats[0]).toBeCloseTo(0.5, 12);
      expect(r.perCategory.map((c) => c.ap)).toEqual([expect.closeTo(0.5, 12), -1]);
    },
  },
];

/** A random scene: sizes across the three area ranges, crowds, mask areas below box areas, jittered and duplicate detections, false positives, tied scores, a crowded image past 100 detections. */
function randomCase(seed: number): Case {
  const r = rng(seed);
  const images = Array.from({ length: 30 }, (_, i) => i + 1);
  const categories = [1, 2, 3, 4, 5, 6]; // 6 never has ground truth
  const gts: CocoGroundTruth[] = [];
  const dts: CocoDetection[] = [];
  const box = (): Box => {
    const w = 4 + Math.floor(r() ** 2 * 200);
    const h = 4 + Math.floor(r() ** 2 * 200);
    return [Math.floor(r() * 400), Math.floor(r() * 400), w, h];
  };
  const score = () => Math.round(r() * 100) / 100;
  for (const img of images) {
    const n = img % 7 === 0 ? 0 : Math.floor(r() * 6);
    for (let i = 0; i < n; i++) {
      const b = box();
      const cat = 1 + Math.floor(r() * 5);
      const crowd = r() < 0.06 ? 1 : 0;
      gts.push(gt(gts.length + 1, img, cat, b, { iscrowd: crowd, area: Math.max(1, Math.round(b[2] * b[3] * (0.5 + r() / 2))) }));
      if (r() < 0.8) {
        const jitter = (v: number, s: number) => v + (r() - 0.5) * s * 0.4;
        dts.push(dt(img, cat, [jitter(b[0], b[2]), jitter(b[1], b[3]), b[2] * (0.8 + r() * 0.4), b[3] * (0.8 + r() * 0.4)], score()));
        if (r() < 0.2) dts.push(dt(img, cat, [b[0] + 2, b[1] + 2, b[2], b[3]], score()));
      }
    }
    for (let i = 0; i < Math.floor(r() * 3); i++) dts.push(dt(img, 1 + Math.floor(r() * 6), box(), score()));
  }
  const crowded = images[3]!;
  for (let i = 0; i < 130; i++) dts.push(dt(crowded, 1, box(), score()));
  return { name: `random scene ${seed}`, images, categories, gts, dts };
}

describe('COCO evaluation', () => {
  it('uses numpy.linspace thresholds, including its rounding', () => {
    const t = linspace(0.5, 0.95, 10);
    expect(t[2]).toBe(0.6);
    expect(t[5]).toBe(0.75);
    expect(t[8]).toBe(0.8999999999999999);
    expect(linspace(0, 1, 101)[100]).toBe(1);
  });

  it('refuses results that mix boxes and no boxes (pycocotools would crash on them)', () => {
    const seg = encodeMask([1, 1, 0, 0], 2, 2);
    const gts = [gt(1, 1, 1, [0, 0, 2, 1], { segmentation: seg })];
    expect(() =>
      cocoEvaluate(
        gts,
        [
          { ...dt(1, 1, [0, 0, 2, 1], 0.9), segmentation: seg },
          { image_id: 1, category_id: 1, score: 0.5, segmentation: seg },
        ],
        { imgIds: [1], catIds: [1], iouType: 'segm' },
      ),
    ).toThrow(/result 2 has no bbox, but the first result has one/);
  });

  describe.each(handWorked)('$name', (c) => {
    it('gives the hand-worked result', () => c.expect(evaluate(c)));
  });

  it('equals pycocotools on every case, all 12 stats and per-class AP/AP50/recall', () => {
    const cases: Case[] = [...handWorked, ...[1, 2, 3, 4, 5, 6].map(randomCase)];
    const reference = pycocotoolsEvaluate(cases.map(toReference));
    cases.forEach((c, i) => {
      expectSameAsPycocotools(c.name, evaluate(c), reference[i]!);
    });
    // The random scenes exercise every branch: some stats must be between 0 and 1.
    expect(reference.slice(handWorked.length).some((r) => r.stats.some((s) => s > 0 && s < 1))).toBe(true);
  });

  it('equals pycocotools for keypoints (OKS with the 17 COCO sigmas), all 10 stats and per-class values', () => {
    const poseCase = (seed: number): Case => {
      const r = rng(seed);
      const images = Array.from({ length: 25 }, (_, i) => i + 1);
      const gts: CocoGroundTruth[] = [];
      const dts: CocoDetection[] = [];
      for (const img of images) {
        for (let n = 0; n < Math.floor(r() * 4); n++) {
          const w = 20 + r() * 200;
          const h = 40 + r() * 250;
          const x = r() * 300;
          const y = r() * 300;
          const unlabelled = r() < 0.1; // num_keypoints 0: ignored like a crowd
          const keypoints = Array.from({ length: 17 }, () => {
            const v = unlabelled ? 0 : r() < 0.2 ? 0 : r() < 0.5 ? 1 : 2;
            return v === 0 ? [0, 0, 0] : [x + r() * w, y + r() * h, v];
          }).flat();
          const id = gts.length + 1;
          gts.push({
            id,
            image_id: img,
            category_id: 1,
            bbox: [x, y, w, h],
            area: w * h * (0.4 + r() * 0.4),
            iscrowd: r() < 0.05 ? 1 : 0,
            keypoints,
            num_keypoints: keypoints.filter((_, j) => j % 3 === 2 && keypoints[j]! > 0).length,
          });
          if (r() < 0.85) {
            const spread = Math.sqrt(w * h) * (r() * 0.15);
            // Labelled keypoints jittered; unlabelled ones guessed at the box corner.
            const predicted = keypoints.map((v, j) => (j % 3 === 2 ? 1 : (v || (j % 3 === 0 ? x : y)) + (r() - 0.5) * spread));
            // Even seeds send boxes with the keypoints (as Ultralytics' COCO JSON does), odd ones do not.
            const withBox = seed % 2 === 0 ? { bbox: [x, y, w * (0.9 + r() * 0.2), h * (0.9 + r() * 0.2)] as Box } : {};
            dts.push({ image_id: img, category_id: 1, ...withBox, score: Math.round(r() * 100) / 100, keypoints: predicted });
            if (r() < 0.2)
              dts.push({
                image_id: img,
                category_id: 1,
                ...withBox,
                score: Math.round(r() * 100) / 100,
                keypoints: predicted.map((v, j) => (j % 3 === 2 ? 1 : v + 3)),
              });
          }
        }
        if (r() < 0.3) {
          const fx = r() * 400;
          const fy = r() * 400;
          const fp = Array.from({ length: 17 }, () => [fx + r() * 60, fy + r() * 120, 1]).flat();
          dts.push({
            image_id: img,
            category_id: 1,
            ...(seed % 2 === 0 ? { bbox: [fx, fy, 60, 120] as Box } : {}),
            score: Math.round(r() * 100) / 100,
            keypoints: fp,
          });
        }
      }
      return { name: `pose scene ${seed}`, images, categories: [1], gts, dts };
    };
    const cases = [11, 12, 13, 14].map(poseCase);
    const reference = pycocotoolsEvaluate(cases.map((c) => ({ ...toReference(c), iouType: 'keypoints' as const })));
    cases.forEach((c, i) => {
      const ours = cocoEvaluate(c.gts, c.dts, { imgIds: c.images, catIds: c.categories, iouType: 'keypoints' });
      expect(ours.stats).toHaveLength(10);
      expectSameAsPycocotools(c.name, ours, reference[i]!);
    });
    expect(reference.every((r) => r.stats[0]! > 0 && r.stats[0]! < 1)).toBe(true);
  });

  it('equals pycocotools for masks (segm), with and without boxes on the results', () => {
    const H = 40;
    const W = 50;
    const blob = (r: () => number, x0: number, y0: number, w: number, h: number): number[] => {
      const m = new Array<number>(H * W).fill(0);
      for (let y = Math.max(0, y0); y < Math.min(H, y0 + h); y++) for (let x = Math.max(0, x0); x < Math.min(W, x0 + w); x++) if (r() < 0.9) m[y * W + x] = 1;
      return m;
    };
    const segmCase = (seed: number) => {
      const r = rng(seed);
      const images = Array.from({ length: 15 }, (_, i) => i + 1);
      const gts: CocoGroundTruth[] = [];
      const dts: CocoDetection[] = [];
      for (const img of images) {
        for (let n = 0; n < Math.floor(r() * 4); n++) {
          const [x0, y0, w, h] = [Math.floor(r() * 40), Math.floor(r() * 30), 3 + Math.floor(r() * 20), 3 + Math.floor(r() * 15)];
          const seg = encodeMask(blob(r, x0, y0, w, h), H, W);
          if (rleArea(seg) === 0) continue;
          const cat = 1 + Math.floor(r() * 2);
          gts.push({
            id: gts.length + 1,
            image_id: img,
            category_id: cat,
            bbox: rleToBbox(seg),
            area: rleArea(seg),
            iscrowd: r() < 0.08 ? 1 : 0,
            segmentation: seg,
          });
          if (r() < 0.85) {
            const d = encodeMask(blob(r, x0 + Math.floor(r() * 3) - 1, y0 + Math.floor(r() * 3) - 1, w, h), H, W);
            if (rleArea(d) > 0)
              dts.push({ image_id: img, category_id: cat, score: Math.round(r() * 100) / 100, segmentation: d, ...(seed % 2 ? { bbox: rleToBbox(d) } : {}) });
          }
        }
        if (r() < 0.4) {
          const fp = encodeMask(blob(r, Math.floor(r() * 40), Math.floor(r() * 30), 8, 8), H, W);
          if (rleArea(fp) > 0)
            dts.push({
              image_id: img,
              category_id: 1 + Math.floor(r() * 2),
              score: Math.round(r() * 100) / 100,
              segmentation: fp,
              ...(seed % 2 ? { bbox: rleToBbox(fp) } : {}),
            });
        }
      }
      return { name: `mask scene ${seed}`, images, categories: [1, 2], gts, dts };
    };
    const compressed = (rle: Rle) => ({ size: rle.size, counts: rleToString(rle) });
    const cases = [21, 22, 23].map(segmCase);
    const reference = pycocotoolsEvaluate(
      cases.map((c) => ({
        gt: {
          info: {},
          images: c.images.map((id) => ({ id, height: H, width: W })),
          categories: c.categories.map((id) => ({ id, name: `c${id}` })),
          annotations: c.gts.map((g) => ({ ...g, segmentation: compressed(g.segmentation!) })),
        },
        dt: c.dts.map((d) => ({ ...d, segmentation: compressed(d.segmentation!) })),
        iouType: 'segm' as const,
      })),
    );
    cases.forEach((c, i) => {
      expectSameAsPycocotools(c.name, cocoEvaluate(c.gts, c.dts, { imgIds: c.images, catIds: c.categories, iouType: 'segm' }), reference[i]!);
    });
    expect(reference.every((r) => r.stats[0]! > 0 && r.stats[0]! < 1)).toBe(true);
  });
});
