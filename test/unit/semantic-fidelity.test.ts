// Semantic segmentation metrics against the reference libraries themselves, on the same class
// maps: mmsegmentation's IoUMetric (its own module, loaded without mmcv, which it does not need
// for a metric) and torchmetrics' JaccardIndex(task='multiclass', ignore_index=255), accumulated
// over the dataset. The averaging that corresponds: mmseg's mIoU (areas summed over the dataset,
// NaN for a class absent from labels and predictions, nanmean) is torchmetrics' average='macro'
// (classes with an empty confusion row and column weigh 0); per-class IoU is average='none'.
// Planted: ignored pixels (255), a class never labelled but predicted, a class absent from both,
// images of different sizes.
import { SegmentationAccumulator } from '../../src/runner/segmentation/miou.ts';
import { runReference } from '../support/reference-python.ts';
import { rng } from '../../src/samples/images.ts';

const NUM_CLASSES = 6;
/** Class 4 is predicted but never labelled; class 5 appears nowhere. */
function images(seed: number) {
  const r = rng(seed);
  return [
    [37, 23],
    [64, 48],
    [5, 101],
    [80, 80],
  ].map(([w, h]) => {
    const label = new Uint8Array(w! * h!);
    const pred = new Uint8Array(w! * h!);
    // Blocky regions, so that agreement is partial rather than random.
    for (let y = 0; y < h!; y++)
      for (let x = 0; x < w!; x++) {
        const l = (Math.floor(x / 9) + Math.floor(y / 7)) % 4;
        label[y * w! + x] = r() < 0.05 ? 255 : l;
        pred[y * w! + x] = r() < 0.7 ? l : r() < 0.1 ? 4 : Math.floor(r() * 4);
      }
    return { label, pred };
  });
}

const SCRIPT = `
import json, sys, types, importlib.util
from pathlib import Path
import numpy as np, torch
from torchmetrics.classification import MulticlassJaccardIndex
# mmseg/__init__ insists on mmcv (CUDA ops): register nothing, load the metric's module alone.
registry = types.ModuleType('mmseg.registry')
registry.METRICS = types.SimpleNamespace(register_module=lambda *a, **k: (lambda c: c))
package = types.ModuleType('mmseg'); package.__path__ = []
sys.modules.update({'mmseg': package, 'mmseg.registry': registry})
site = Path(torch.__file__).parent.parent
spec = importlib.util.spec_from_file_location('iou_metric', site / 'mmseg' / 'evaluation' / 'metrics' / 'iou_metric.py')
iou_metric = importlib.util.module_from_spec(spec); spec.loader.exec_module(iou_metric)
inp = json.load(open(sys.argv[1]))
n = inp['num_classes']
metric = iou_metric.IoUMetric(iou_metrics=['mIoU'], ignore_index=255)
metric.dataset_meta = {'classes': [f'c{i}' for i in range(n)]}
macro = MulticlassJaccardIndex(num_classes=n, ignore_index=255, average='macro')
none = MulticlassJaccardIndex(num_classes=n, ignore_index=255, average='none')
for im in inp['images']:
    pred = torch.tensor(im['pred'], dtype=torch.int64).reshape(im['h'], im['w'])
    label = torch.tensor(im['label'], dtype=torch.int64).reshape(im['h'], im['w'])
    metric.process([], [{'pred_sem_seg': {'data': pred[None]}, 'gt_sem_seg': {'data': label[None]}}])
    macro.update(pred[None], label[None]); none.update(pred[None], label[None])
results = list(metric.results)
summary = metric.compute_metrics(results)
areas = [sum(r[k] for r in results) for k in range(4)]
per_class = iou_metric.IoUMetric.total_area_to_metrics(*areas, ['mIoU'])
nan = lambda v: None if np.isnan(v) else float(v)  # JSON has no NaN
print(json.dumps({'mmseg': {k: float(v) for k, v in summary.items()}, 'mmseg_iou': [nan(v) for v in per_class['IoU']],
                  'mmseg_acc': [nan(v) for v in per_class['Acc']], 'tm_macro': float(macro.compute()), 'tm_none': none.compute().tolist()}))
`;

describe('semantic segmentation metrics identical to mmsegmentation and torchmetrics', () => {
  const data = images(11);
  let reference: { mmseg: Record<string, number>; mmseg_iou: Array<number | null>; mmseg_acc: Array<number | null>; tm_macro: number; tm_none: number[] };
  let mine: ReturnType<SegmentationAccumulator['result']>;

  beforeAll(() => {
    reference = runReference(SCRIPT, {
      num_classes: NUM_CLASSES,
      images: data.map((im, i) => ({ w: [37, 64, 5, 80][i], h: [23, 48, 101, 80][i], pred: Array.from(im.pred), label: Array.from(im.label) })),
    });
    const acc = new SegmentationAccumulator(NUM_CLASSES);
    for (const im of data) acc.add(im.pred, im.label);
    mine = acc.result();
  }, 300_000);

  it("has mmseg's per-class IoU and accuracy (float32 there), NaN where mmseg has NaN", () => {
    const f = (v: number) => (Number.isNaN(v) ? null : Math.fround(v));
    expect(mine.perClass.map((c) => f(c.iou))).toEqual(reference.mmseg_iou);
    expect(mine.perClass.map((c) => f(c.acc))).toEqual(reference.mmseg_acc);
    expect(mine.perClass[4]!.iou).toBe(0);
    expect(mine.perClass[5]!.iou).toBeNaN();
  });

  it("has mmseg's mIoU, mAcc and aAcc (its percentages, rounded to 2 decimals)", () => {
    // mmseg rounds its float32 nanmean x 100 to 2 decimals, in float32.
    const pct = (v: number) => Math.fround(Math.round(v * 100 * 100) / 100);
    expect({ mIoU: pct(mine.mIoU), mAcc: pct(mine.mAcc), aAcc: pct(mine.aAcc) }).toEqual({
      mIoU: reference.mmseg.mIoU,
      mAcc: reference.mmseg.mAcc,
      aAcc: reference.mmseg.aAcc,
    });
  });

  it("is torchmetrics' JaccardIndex: average='none' per class (0 where undefined), average='macro' for mIoU", () => {
    expect(mine.perClass.map((c) => (Number.isNaN(c.iou) ? 0 : Math.fround(c.iou)))).toEqual(reference.tm_none);
    // torchmetrics averages in float32.
    expect(Math.abs(mine.mIoU - reference.tm_macro)).toBeLessThanOrEqual(1e-6);
    expect(mine.mIoU).toBeGreaterThan(0.2);
  });
});
