import { SegmentationAccumulator } from '../../src/runner/segmentation/miou.ts';

describe('semantic segmentation metrics (mmsegmentation convention)', () => {
  it('sums areas over the dataset, ignores 255, and leaves out a class absent from both', () => {
    const m = new SegmentationAccumulator(4);
    // Image 1 (2x3):        label            pred
    //                       0 0 1            0 1 1
    //                       1 255 255        1 0 2
    m.add([0, 1, 1, 1, 0, 2], [0, 0, 1, 1, 255, 255]);
    // Image 2 (1x2): label 2 2, pred 2 0
    m.add([2, 0], [2, 2]);
    const r = m.result();
    // Counted pixels (label != 255): image 1 -> (p,l) = (0,0) (1,0) (1,1) (1,1); image 2 -> (2,2) (0,2).
    // class 0: I=1, P=2 (img1 px0, img2 px1), L=2 -> U=3 -> 1/3
    // class 1: I=2, P=3, L=2 -> U=3 -> 2/3
    // class 2: I=1, P=1, L=2 -> U=2 -> 1/2
    // class 3: absent from both -> NaN, not 0, and out of the mean
    expect(r.perClass[0]!.iou).toBeCloseTo(1 / 3, 12);
    expect(r.perClass[1]!.iou).toBeCloseTo(2 / 3, 12);
    expect(r.perClass[2]!.iou).toBeCloseTo(1 / 2, 12);
    expect(r.perClass[3]!.iou).toBeNaN();
    expect(r.mIoU).toBeCloseTo((1 / 3 + 2 / 3 + 1 / 2) / 3, 12);
    // Pixel accuracy: 4 correct of 6 labelled; per-class accuracy 1/2, 2/2, 1/2.
    expect(r.aAcc).toBeCloseTo(4 / 6, 12);
    expect(r.mAcc).toBeCloseTo((0.5 + 1 + 0.5) / 3, 12);
  });

  it('counts a class predicted but never labelled as IoU 0 (it is in the union)', () => {
    const m = new SegmentationAccumulator(2);
    m.add([1, 1], [0, 0]);
    const r = m.result();
    expect(r.perClass.map((c) => c.iou)).toEqual([0, 0]);
    expect(r.mIoU).toBe(0);
    expect(r.perClass[1]!.acc).toBeNaN();
  });

  it('is the same whether images come one by one or as one', () => {
    const a = new SegmentationAccumulator(3);
    const b = new SegmentationAccumulator(3);
    const labels = [0, 1, 2, 2, 255, 1, 0, 0];
    const preds = [0, 2, 2, 1, 0, 1, 0, 1];
    a.add(preds, labels);
    b.add(preds.slice(0, 3), labels.slice(0, 3));
    b.add(preds.slice(3), labels.slice(3));
    expect(b.result()).toEqual(a.result());
    // Per-image counts, through JSON as a job keeps them, summed into a dataset one give the same figures.
    const merged = new SegmentationAccumulator(3);
    for (const [from, to] of [
      [0, 3],
      [3, 8],
    ]) {
      const image = new SegmentationAccumulator(3);
      image.add(preds.slice(from, to), labels.slice(from, to));
      merged.addCounts(JSON.parse(JSON.stringify(image.counts())) as ReturnType<typeof image.counts>);
    }
    expect(merged.result()).toEqual(a.result());
  });

  it('refuses a prediction of another size', () => {
    expect(() => new SegmentationAccumulator(2).add([0], [0, 1])).toThrow(/1 pixels, ground truth 2/);
  });
});
