// NMS against Ultralytics 8.4's non_max_suppression itself (torchvision's kernel), on the same
// float32 tensors: multi-label (val) and best class (predict), with planted edge cases: boxes
// whose IoU is exactly at the threshold or within 1e-4 of it for high class ids (where the class
// offset costs float32 precision), scores exactly at float32(conf), ties, more candidates than
// max_det, NaN class scores, and an end-to-end output.
import fc from 'fast-check';
import { decodeEndToEnd, decodeYolo, nms } from '../../src/runner/detection/yolo-postprocess.ts';
import { runReference } from '../support/reference-python.ts';

const f32 = Math.fround;

function rng(seed: number) {
  let s = seed;
  return () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
}

interface Case {
  name: string;
  nc: number;
  /** Anchor-major rows of (cx, cy, w, h, class scores..., anchor id). */
  rows: number[][];
  conf: number;
  iou: number;
  maxDet: number;
  multiLabel: boolean;
}

/** Channel-major [4 + nc + 1, N] as exported; the extra channel carries the anchor id through NMS. */
function tensor(rows: number[][]): Float32Array {
  const n = rows.length;
  const channels = rows[0]!.length;
  const t = new Float32Array(channels * n);
  rows.forEach((r, a) => r.forEach((v, c) => (t[c * n + a] = f32(v))));
  return t;
}

function randomCase(
  name: string,
  seed: number,
  opts: { nc: number; anchors: number; multiLabel: boolean; conf: number; iou?: number; maxDet?: number; scale?: number },
): Case {
  const r = rng(seed);
  const rows: number[][] = [];
  // Clusters of boxes, so that NMS has work: a few centres, jittered.
  const centres = Array.from({ length: 6 }, () => [40 + r() * 560, 40 + r() * 560, 20 + r() * 150, 20 + r() * 150]);
  for (let a = 0; a < opts.anchors; a++) {
    const [cx, cy, w, h] = centres[a % centres.length]!;
    const j = () => (r() - 0.5) * (opts.scale ?? 20);
    const scores = Array.from({ length: opts.nc }, () => (r() < 0.3 ? r() : r() * 0.01));
    rows.push([cx! + j(), cy! + j(), w! + j(), h! + j(), ...scores, a]);
  }
  return { name, nc: opts.nc, rows, conf: opts.conf, iou: opts.iou ?? 0.7, maxDet: opts.maxDet ?? 300, multiLabel: opts.multiLabel };
}

/**
 * 80 x 500 = 40,000 rows above conf, of which the 30,000 best (max_nms) go to NMS. Every score is
 * distinct: Ultralytics picks them with an unstable argsort, whose order of ties is torch's own.
 */
function moreThanMaxNms(): Case {
  const c = randomCase('val, more candidates than max_nms', 5, { nc: 80, anchors: 500, multiLabel: true, conf: 0.001, scale: 300 });
  const r = rng(6);
  const ranks = Array.from({ length: 500 * 80 }, (_, i) => i);
  for (let i = ranks.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [ranks[i], ranks[j]] = [ranks[j]!, ranks[i]!];
  }
  c.rows.forEach((row, a) => {
    for (let k = 0; k < 80; k++) row[4 + k] = 0.002 + (0.997 * ranks[a * 80 + k]!) / ranks.length;
  });
  return c;
}

/** Two boxes of class `cls` whose IoU is `iou` (in exact arithmetic): the same height, shifted sideways. */
function pairAt(iou: number, cls: number, nc: number, anchor: number, x = 100): number[][] {
  // IoU of w-wide boxes shifted by d: (w - d) / (w + d) = iou -> d = w (1 - iou) / (1 + iou).
  const w = 64;
  const d = (w * (1 - iou)) / (1 + iou);
  const scores = (s: number) => Array.from({ length: nc }, (_, c) => (c === cls ? s : 0));
  return [
    [x, 100, w, 40, ...scores(0.9), anchor],
    [x + d, 100, w, 40, ...scores(0.8), anchor + 1],
  ];
}

const CASES: Case[] = [
  randomCase('predict, 3 classes', 1, { nc: 3, anchors: 400, multiLabel: false, conf: 0.25 }),
  randomCase('val, multi-label, 12 classes', 2, { nc: 12, anchors: 600, multiLabel: true, conf: 0.001 }),
  randomCase('val, more candidates than max_det', 3, { nc: 5, anchors: 900, multiLabel: true, conf: 0.001, maxDet: 50, scale: 400 }),
  randomCase('predict, tight iou', 4, { nc: 2, anchors: 300, multiLabel: false, conf: 0.1, iou: 0.45 }),
  moreThanMaxNms(),
  {
    name: 'IoU at and around the threshold, for low and high class ids',
    nc: 80,
    conf: 0.25,
    iou: 0.7,
    maxDet: 300,
    multiLabel: false,
    rows: [0, 5, 42, 79].flatMap((cls, i) =>
      [0.7, 0.7 + 1e-4, 0.7 - 1e-4, 0.7 + 1e-6, 0.7 - 1e-6].flatMap((iou, k) => pairAt(iou, cls, 80, (i * 5 + k) * 2, 100 + 150 * k)),
    ),
  },
  {
    // torch's max over classes gives the first of equal scores; a score equal to conf is not above it.
    name: 'predict: equal best scores of classes in one anchor, and scores at float32(conf)',
    nc: 4,
    conf: 0.25,
    iou: 0.7,
    maxDet: 300,
    multiLabel: false,
    rows: [
      [50, 50, 20, 20, 0.6, 0.6, 0.1, 0, 0],
      [150, 50, 20, 20, 0.2, 0.7, 0.7, 0.7, 1],
      [250, 50, 20, 20, f32(0.25), 0.1, 0, f32(0.25), 2],
      [350, 50, 20, 20, 0.1, 0.2500001, 0, 0.3, 3],
      [450, 50, 20, 20, 0, 0, 0.26, 0.26, 4],
      [550, 50, 20, 20, 0.01, 0.02, 0.03, 0.04, 5],
      // Seven anchors: Ultralytics takes a last dimension of 6 for an end-to-end output.
      [650, 50, 20, 20, 0.9, 0.3, 0.9, 0.3, 6],
    ],
  },
  ...[false, true].map((multiLabel): Case => ({
    // A broken or overflowing model: NaN reaches JSON as null, and NumPy reads null as NaN.
    name: `NaN class scores beside scores above conf (${multiLabel ? 'val, multi-label' : 'predict'})`,
    nc: 3,
    conf: 0.25,
    iou: 0.7,
    maxDet: 300,
    multiLabel,
    rows: [
      [50, 50, 20, 20, NaN, 0.9, 0.1, 0],
      [150, 50, 20, 20, 0.8, NaN, 0.6, 1],
      [250, 50, 20, 20, 0.1, 0.7, NaN, 2],
      [350, 50, 20, 20, 0.5, 0.6, 0.1, 3],
      [450, 50, 20, 20, 0.1, 0.2, NaN, 4],
      [550, 50, 20, 20, 0.3, 0.4, 0.2, 5],
      // Seven anchors: Ultralytics takes a last dimension of 6 for an end-to-end output.
      [650, 50, 20, 20, 0.1, NaN, 0.1, 6],
    ],
  })),
  {
    name: 'scores exactly at float32(conf), ties, and one class',
    nc: 1,
    conf: 0.001,
    iou: 0.7,
    maxDet: 300,
    multiLabel: true,
    rows: [
      [50, 50, 20, 20, f32(0.001), 0],
      [50, 50, 20, 20, 0.0010001, 1],
      [150, 50, 20, 20, 0.5, 2],
      [151, 50, 20, 20, 0.5, 3],
      [300, 50, 20, 20, 0.5, 4],
    ],
  },
];

const SCRIPT = `
import json, sys
import numpy as np, torch
import torchvision  # so that non_max_suppression uses torchvision's kernel, as in a real run
from ultralytics.utils import nms
inp = json.load(open(sys.argv[1]))
out = []
for c in inp:
    t = torch.tensor(np.array(c['tensor'], dtype=np.float32).reshape(1, -1, c['anchors']))
    res = nms.non_max_suppression(t, c['conf'], c['iou'], multi_label=c['multiLabel'], max_det=c['maxDet'], nc=c['nc'])[0]
    out.append(res.numpy().astype(float).tolist())
e2e = torch.tensor(np.array(inp[0]['e2e'], dtype=np.float32).reshape(1, -1, 6))
out.append(nms.non_max_suppression(e2e, 0.25, 0.7, max_det=3, end2end=True)[0].numpy().astype(float).tolist())
print(json.dumps(out))
`;

describe('NMS identical to Ultralytics', () => {
  const e2e = [
    [0, 0, 10, 10, 0.9, 2],
    [0, 0, 10, 10, f32(0.25), 2],
    [5, 5, 9, 9, 0.8, 1],
    [1, 1, 9, 9, 0.7, 0],
    [2, 2, 8, 8, 0.6, 0],
  ];
  let reference: number[][][];

  beforeAll(() => {
    reference = runReference(
      SCRIPT,
      CASES.map((c, i) => ({
        tensor: Array.from(tensor(c.rows)),
        anchors: c.rows.length,
        nc: c.nc,
        conf: c.conf,
        iou: c.iou,
        maxDet: c.maxDet,
        multiLabel: c.multiLabel,
        ...(i === 0 ? { e2e: e2e.flat() } : {}),
      })),
    );
  }, 300_000);

  it.each(CASES.map((c, i) => [c.name, i] as const))('%s: the same detections, in the same order, to the bit', (_name, i) => {
    const c = CASES[i]!;
    const dets = decodeYolo(tensor(c.rows), c.nc, c.rows.length, { conf: c.conf, iou: c.iou, maxDet: c.maxDet, multiLabel: c.multiLabel });
    // Ultralytics' rows: x1, y1, x2, y2, conf, class, anchor id.
    expect(dets.map((d) => [...d.box, d.score, d.classId, d.anchor])).toEqual(reference[i]);
    expect(dets.length).toBeGreaterThan(0);
  });

  it('filters end-to-end outputs without suppressing them', () => {
    const dets = decodeEndToEnd(Float32Array.from(e2e.flat()), e2e.length, { conf: 0.25, maxDet: 3 });
    expect(dets.map((d) => [...d.box, d.score, d.classId])).toEqual(reference.at(-1));
  });
});

describe('max_nms', () => {
  // The rows that go to NMS when there are more than max_nms, ties at the cut included, against
  // the plain way: every row as an object, a stable sort by score, the first max_nms (what the
  // runner did before; Ultralytics orders ties with torch's unstable argsort, so ties are only
  // checked here). Scores come from a handful of values, so that the cut falls among ties.
  it('keeps the best rows, ties at the cut in row order, as a stable sort of every row would', () => {
    fc.assert(
      fc.property(
        fc.record({
          nc: fc.integer({ min: 1, max: 4 }),
          anchors: fc.integer({ min: 1, max: 40 }),
          maxNms: fc.integer({ min: 1, max: 60 }),
          multiLabel: fc.boolean(),
          seed: fc.integer(),
        }),
        ({ nc, anchors, maxNms, multiLabel, seed }) => {
          const r = rng(Math.abs(seed) + 1);
          const levels = [0.2, 0.4, 0.6, 0.8];
          const rows = Array.from({ length: anchors }, () => [
            20 + r() * 100,
            20 + r() * 100,
            5 + r() * 60,
            5 + r() * 60,
            ...Array.from({ length: nc }, () => (r() < 0.2 ? 0.05 : levels[Math.floor(r() * levels.length)]!)),
          ]);
          const t = tensor(rows.map((row, a) => [...row, a]));
          const opts = { conf: 0.1, iou: 0.5, maxDet: 300, multiLabel, maxNms };
          const got = decodeYolo(t, nc, anchors, opts).map((d) => [d.classId, d.anchor, d.score]);
          // The plain way.
          const all: Array<{ a: number; c: number; score: number }> = [];
          rows.forEach((row, a) => {
            const scores = row.slice(4).map(f32);
            if (multiLabel && nc > 1) scores.forEach((score, c) => score > f32(0.1) && all.push({ a, c, score }));
            else {
              const best = Math.max(...scores);
              if (best > f32(0.1)) all.push({ a, c: scores.indexOf(best), score: best });
            }
          });
          const pool = [...all].sort((x, y) => y.score - x.score).slice(0, maxNms);
          const boxes = new Float32Array(pool.length * 4);
          pool.forEach((p, i) => {
            const [cx, cy, w, h] = [0, 1, 2, 3].map((k) => t[k * anchors + p.a]!);
            const [hw, hh] = [f32(w! / 2), f32(h! / 2)];
            const off = f32(p.c * 7680);
            [f32(cx! - hw), f32(cy! - hh), f32(cx! + hw), f32(cy! + hh)].forEach((v, k) => (boxes[4 * i + k] = f32(v + off)));
          });
          const want = nms(
            boxes,
            pool.map((p) => p.score),
            0.5,
          )
            .slice(0, 300)
            .map((i) => [pool[i]!.c, pool[i]!.a, pool[i]!.score]);
          expect(got).toEqual(want);
        },
      ),
      { numRuns: Number(process.env.KINFER_FUZZ_RUNS ?? 300) },
    );
  });
});
