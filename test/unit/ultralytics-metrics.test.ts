// Ultralytics' own metric family against Ultralytics 8.4 itself: the same per-image labels and
// predictions (network pixels, NMS order) go through its DetectionValidator/PoseValidator
// (_process_batch: box_iou or kpt_iou with area x 0.53, then match_predictions) and its
// DetMetrics/PoseMetrics (ap_per_class, compute_ap, smooth, mean_results, fitness), and through
// kinfer's UltralyticsMetrics. Every number of results_dict and every class's AP50 and AP50-95
// must be identical. Planted: classes with labels and no predictions, predictions of classes
// without labels, images without labels or without predictions, near-duplicate predictions that
// compete for one label, 17 COCO keypoints (COCO sigmas) and 5 keypoints (1/K sigmas), invisible
// keypoints. Confidences are distinct: numpy's unstable argsort orders ties its own way.
import { UltralyticsMetrics, ultralyticsSigmas, type UltralyticsImage } from '../../src/runner/detection/ultralytics-metrics.ts';
import { runReference } from '../support/reference-python.ts';
import { rng } from '../../src/samples/images.ts';

const f32 = Math.fround;

interface Dataset {
  name: string;
  nc: number;
  kpts: number;
  images: UltralyticsImage[];
}

function makeDataset(name: string, seed: number, opts: { images: number; nc: number; kpts: number }): Dataset {
  const r = rng(seed);
  const used = new Set<number>();
  const conf = () => {
    // Distinct float32 confidences in [0.001, 1).
    for (;;) {
      const c = f32(0.001 + r() * 0.999);
      if (!used.has(c)) {
        used.add(c);
        return c;
      }
    }
  };
  const { nc, kpts } = opts;
  const images: UltralyticsImage[] = [];
  for (let im = 0; im < opts.images; im++) {
    const nl = im % 9 === 4 ? 0 : 1 + Math.floor(r() * 6);
    const labels: Array<{ box: number[]; cls: number; kp: number[] }> = [];
    for (let l = 0; l < nl; l++) {
      const [w, h] = [20 + r() * 200, 20 + r() * 200];
      const [x, y] = [r() * (640 - w), r() * (640 - h)];
      // The last class never has labels; class 0 is common.
      const cls = r() < 0.3 ? 0 : Math.floor(r() * (nc - 1));
      const kp = Array.from({ length: kpts }, () => [x + r() * w, y + r() * h, r() < 0.2 ? 0 : r() < 0.5 ? 1 : 2]).flat();
      labels.push({ box: [x, y, x + w, y + h], cls, kp });
    }
    const preds: Array<{ box: number[]; cls: number; kp: number[]; conf: number }> = [];
    if (im % 11 !== 7) {
      for (const l of labels) {
        // A detection near most labels (sometimes of the wrong class), and now and then a second one.
        for (let copy = 0; copy < (r() < 0.25 ? 2 : 1); copy++) {
          if (r() < 0.15) continue;
          const s = r() * 0.35;
          const [x1, y1, x2, y2] = l.box as [number, number, number, number];
          const jit = () => (r() - 0.5) * s * (x2 - x1);
          const cls = r() < 0.1 ? Math.floor(r() * nc) : l.cls;
          const kp = l.kp.map((v, i) => (i % 3 === 2 ? f32(r()) : f32(v + (r() - 0.5) * s * 40)));
          preds.push({ box: [x1 + jit(), y1 + jit(), x2 + jit(), y2 + jit()], cls, kp, conf: conf() });
        }
      }
      // False positives, including of the class that has no labels.
      for (let k = Math.floor(r() * 4); k > 0; k--) {
        const [x, y] = [r() * 500, r() * 500];
        preds.push({
          box: [x, y, x + 20 + r() * 120, y + 20 + r() * 120],
          cls: Math.floor(r() * nc),
          kp: Array.from({ length: kpts * 3 }, () => f32(r() * 600)),
          conf: conf(),
        });
      }
    }
    preds.sort((a, b) => b.conf - a.conf);
    images.push({
      predBoxes: Float32Array.from(preds.flatMap((p) => p.box)),
      predClass: Int32Array.from(preds.map((p) => p.cls)),
      conf: Float32Array.from(preds.map((p) => p.conf)),
      predKeypoints: kpts ? Float32Array.from(preds.flatMap((p) => p.kp)) : undefined,
      labelBoxes: Float32Array.from(labels.flatMap((l) => l.box)),
      labelClass: Int32Array.from(labels.map((l) => l.cls)),
      labelKeypoints: kpts ? Float32Array.from(labels.flatMap((l) => l.kp)) : undefined,
    });
  }
  return { name, nc, kpts, images };
}

const DATASETS: Dataset[] = [
  makeDataset('detection, 12 classes, 60 images', 7, { images: 60, nc: 12, kpts: 0 }),
  makeDataset('detection, 3 classes, 25 images', 8, { images: 25, nc: 3, kpts: 0 }),
  makeDataset('detection, 150 classes, 200 images', 9, { images: 200, nc: 150, kpts: 0 }),
  makeDataset('pose, 17 COCO keypoints', 10, { images: 40, nc: 2, kpts: 17 }),
  makeDataset('pose, 5 keypoints', 11, { images: 40, nc: 1, kpts: 5 }),
];

const SCRIPT = `
import json, sys, tempfile
from pathlib import Path
import numpy as np, torch
from ultralytics.models.yolo.detect import DetectionValidator
from ultralytics.models.yolo.pose import PoseValidator
from ultralytics.utils.metrics import DetMetrics, PoseMetrics, OKS_SIGMA
out = []
for ds in json.load(open(sys.argv[1])):
    nc, k = ds['nc'], ds['kpts']
    names = {i: str(i) for i in range(nc)}
    save = Path(tempfile.mkdtemp())
    if k:
        v = PoseValidator(save_dir=save, args={'task': 'pose'})
        v.sigma = OKS_SIGMA if k == 17 else np.ones(k) / k
        m = PoseMetrics(names=names)
    else:
        v = DetectionValidator(save_dir=save, args={'task': 'detect'})
        m = DetMetrics(names=names)
    for i, im in enumerate(ds['images']):
        f32 = lambda a, *shape: torch.tensor(np.array(a, dtype=np.float32).reshape(*shape))
        preds = {'bboxes': f32(im['predBoxes'], -1, 4), 'cls': torch.tensor(im['predClass'], dtype=torch.float32), 'conf': f32(im['conf'], -1)}
        batch = {'bboxes': f32(im['labelBoxes'], -1, 4), 'cls': torch.tensor(im['labelClass'], dtype=torch.float32)}
        if k:
            preds['keypoints'] = f32(im['predKeypoints'], -1, k, 3)
            batch['keypoints'] = f32(im['labelKeypoints'], -1, k, 3)
        cls = batch['cls'].numpy()
        no_pred = preds['cls'].shape[0] == 0
        m.update_stats({**v._process_batch(preds, batch), 'target_cls': cls, 'target_img': np.unique(cls),
                        'conf': np.zeros(0) if no_pred else preds['conf'].numpy(),
                        'pred_cls': np.zeros(0) if no_pred else preds['cls'].numpy(), 'im_name': f'{i}.jpg'})
    m.process(save_dir=save, plot=False)
    out.append({'results': m.results_dict, 'classes': m.ap_class_index.tolist() if hasattr(m.ap_class_index, 'tolist') else list(m.ap_class_index),
                'ap50': m.box.ap50.tolist(), 'ap': m.box.ap.tolist()})
print(json.dumps(out))
`;

interface Reference {
  results: Record<string, number>;
  classes: number[];
  ap50: number[];
  ap: number[];
}

describe("Ultralytics' metrics (ap_per_class, match_predictions) identical to Ultralytics 8.4", () => {
  let reference: Reference[];

  beforeAll(() => {
    reference = runReference<Reference[]>(
      SCRIPT,
      DATASETS.map((d) => ({
        nc: d.nc,
        kpts: d.kpts,
        images: d.images.map((im) => ({
          predBoxes: Array.from(im.predBoxes),
          predClass: Array.from(im.predClass),
          conf: Array.from(im.conf),
          predKeypoints: im.predKeypoints ? Array.from(im.predKeypoints) : undefined,
          labelBoxes: Array.from(im.labelBoxes),
          labelClass: Array.from(im.labelClass),
          labelKeypoints: im.labelKeypoints ? Array.from(im.labelKeypoints) : undefined,
        })),
      })),
    );
  }, 300_000);

  it.each(DATASETS.map((d, i) => [d.name, i] as const))('%s', (_name, i) => {
    const d = DATASETS[i]!;
    const ref = reference[i]!;
    const metrics = new UltralyticsMetrics(d.kpts ? ['B', 'P'] : ['B'], d.kpts ? ultralyticsSigmas(d.kpts) : undefined);
    for (const im of d.images) metrics.add(im);
    const { overall, perClass } = metrics.result();
    // Not a degenerate case: the numbers are neither 0 nor 1.
    expect(ref.results['metrics/mAP50-95(B)']).toBeGreaterThan(0.05);
    expect(ref.results['metrics/mAP50-95(B)']).toBeLessThan(0.95);
    expect(overall).toEqual(ref.results);
    expect([...perClass.keys()]).toEqual(ref.classes);
    expect(ref.classes.map((c) => perClass.get(c)!.ap50)).toEqual(ref.ap50);
    expect(ref.classes.map((c) => perClass.get(c)!.ap)).toEqual(ref.ap);
  });
});
