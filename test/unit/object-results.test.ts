// Per-image scoring, prototype masks and YOLO labels, on cases worked out by hand.
import { ObjectEvaluator } from '../../src/runner/detection/object-evaluator.ts';
import { instanceMask } from '../../src/runner/detection/instance-masks.ts';
import { letterboxGeometry } from '../../src/runner/detection/letterbox.ts';
import { parseYoloLabels } from '../../src/runner/datasets/yolo-labels.ts';
import { decodeMask, rleArea, rleToBbox } from '../../src/runner/segmentation/rle.ts';

const gt = (id: number, cat: number, bbox: [number, number, number, number], iscrowd: 0 | 1 = 0) => ({
  id,
  image_id: 1,
  category_id: cat,
  bbox,
  area: bbox[2] * bbox[3],
  iscrowd,
});
const dt = (cat: number, bbox: [number, number, number, number], score: number) => ({ image_id: 1, category_id: cat, bbox, score });

describe('per-image scoring at IoU 0.5 among confident detections', () => {
  const evaluator = () => new ObjectEvaluator({ iouType: 'bbox', classNames: ['a', 'b', 'c'], categoryIds: [0, 1, 2], evaluatedCategoryIds: [0, 1, 2] });

  it('matches greedily by confidence: a duplicate is a false positive, an unmatched object a miss', () => {
    const e = evaluator();
    const score = e.add(
      1,
      [gt(1, 0, [0, 0, 10, 10]), gt(2, 1, [50, 50, 10, 10])],
      [
        dt(0, [0, 0, 10, 10], 0.9), // IoU 1 with gt 1
        dt(0, [1, 0, 10, 10], 0.8), // IoU 90/110 with gt 1, already taken: duplicate
        dt(1, [80, 80, 5, 5], 0.7), // nothing there
        dt(1, [50, 50, 10, 10], 0.1), // right, but below 0.25: not shown, not counted
      ],
    );
    expect(score).toEqual({ tp: 1, fp: 2, fn: 1, matchIous: [1, null, null, null] });
  });

  it('counts a detection on a crowd region as neither right nor wrong, and a crowd as never missed', () => {
    const score = evaluator().add(1, [gt(1, 2, [0, 0, 100, 100], 1)], [dt(2, [10, 10, 20, 20], 0.9)]);
    // Crowd IoU = intersection / detection area = 1.
    expect(score).toEqual({ tp: 0, fp: 0, fn: 0, matchIous: [null] });
  });

  it('does not match across classes, and an empty image with nothing found is clean', () => {
    const e = evaluator();
    expect(e.add(1, [gt(1, 0, [0, 0, 10, 10])], [dt(1, [0, 0, 10, 10], 0.9)])).toMatchObject({ tp: 0, fp: 1, fn: 1 });
    expect(e.add(2, [], [])).toEqual({ tp: 0, fp: 0, fn: 0, matchIous: [] });
    const per = e.result().per_class_metrics;
    expect(per[0]).toMatchObject({ precision: null, recall: 0, support: 1 });
    expect(per[1]).toMatchObject({ precision: 0, recall: null, support: 0 });
    // Class c has no ground truth anywhere: no AP at all rather than 0.
    expect(per[2]).toMatchObject({ ap: null, ap50: null });
  });
});

describe('YOLOv8-seg prototype masks', () => {
  // A 16x16 input, 4x4 prototypes; prototype 0 is +10 in cells (1..2, 1..2), -10 elsewhere.
  const protos = { data: new Float32Array(2 * 16), channels: 2, height: 4, width: 4 };
  for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) protos.data[y * 4 + x] = x >= 1 && x <= 2 && y >= 1 && y <= 2 ? 10 : -10;
  const predict = (width: number, height: number) => ({
    mode: 'predict' as const,
    inputSize: [16, 16] as [number, number],
    geometry: letterboxGeometry(width, height, [16, 16]),
    original: { width, height },
  });
  // The box in original pixels (predict uses these) and in network pixels.
  const boxes = (original: number[], width: number, height: number) => {
    const g = letterboxGeometry(width, height, [16, 16]);
    return {
      original,
      network: [original[0]! * g.gainX + g.left, original[1]! * g.gainY + g.top, original[2]! * g.gainX + g.left, original[3]! * g.gainY + g.top],
    };
  };

  it('thresholds the bilinear logits at 0 (half a cell past the positive cells) inside the box', () => {
    // Original = input (no letterbox): cells 1..2 cover pixels 4..11; logits cross 0 half a cell out, at 2 and 14.
    const rle = instanceMask(protos, [1, 0], boxes([0, 0, 16, 16], 16, 16), predict(16, 16));
    expect(rleToBbox(rle)).toEqual([4, 4, 8, 8]);
    // The four corner pixels read 3 negative cells of 4 (weights 0.375 * 0.375 ... ): logit -2.19, out.
    expect(rleArea(rle)).toBe(64 - 4);
  });

  it('crops to the box (pixel r inside when x1 <= r < x2) and follows the letterbox back to the original', () => {
    const cropped = instanceMask(protos, [1, 0], boxes([6, 0, 9.5, 16], 16, 16), predict(16, 16));
    expect(rleToBbox(cropped)).toEqual([6, 4, 4, 8]);
    // A 32x16 original is letterboxed to 16x8 with 4 rows of padding: the mask lands at half the rows' offset.
    const wide = instanceMask(protos, [1, 0], boxes([0, 0, 32, 16], 32, 16), predict(32, 16));
    const m = decodeMask(wide);
    expect(m.length).toBe(32 * 16);
    expect(rleToBbox(wide)).toEqual([8, 0, 16, 16]);
  });
});

describe('YOLO label files', () => {
  it('turns normalized boxes, polygons and keypoints into pixels, with COCO areas', () => {
    const base = { numClasses: 3, imageId: 7, firstId: 1, width: 200, height: 100 };
    expect(parseYoloLabels('1 0.5 0.5 0.2 0.4\n\n', { ...base, task: 'object_detection' })).toEqual([
      // The normalized values as Ultralytics' float32 label arrays hold them, for its metric family.
      { id: 1, image_id: 7, category_id: 1, iscrowd: 0, bbox: [80, 30, 40, 40], area: 1600, yolo: { xywh: [0.5, 0.5, Math.fround(0.2), Math.fround(0.4)] } },
    ]);
    const [seg] = parseYoloLabels('2 0.1 0.1 0.3 0.1 0.3 0.5 0.1 0.5', { ...base, task: 'instance_segmentation' });
    expect(seg).toMatchObject({ category_id: 2, bbox: [20, 10, 40, 40] });
    expect(seg!.area).toBeGreaterThan(1500);
    const [pose] = parseYoloLabels(`0 0.5 0.5 0.5 0.5 ${'0.5 0.5 2 '.repeat(16)}0 0 0`, { ...base, task: 'pose_estimation' });
    expect(pose!.keypoints!.slice(0, 3)).toEqual([100, 50, 2]);
    expect(pose!.num_keypoints).toBe(16);
  });

  it('names the line and the problem', () => {
    const o = { task: 'object_detection' as const, numClasses: 2, imageId: 0, firstId: 1, width: 10, height: 10 };
    expect(() => parseYoloLabels('0 0.5 0.5 0.1 0.1\n5 0.5 0.5 0.1 0.1', o)).toThrow(/label line 2: class 5 is not one of the model's 2 classes/);
    expect(() => parseYoloLabels('0 0.5 x 0.1 0.1', o)).toThrow(/label line 1 has a value that is not a number/);
  });
});
