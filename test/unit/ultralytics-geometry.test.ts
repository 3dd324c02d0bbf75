// Into the network and back, against Ultralytics 8.4 itself (the reference venv): its YOLODataset
// as `yolo val` loads a dataset (load_image's long-side resize, LetterBox without enlarging,
// ratio_pad, labels through LetterBox and Format into network pixels), its predict-time LetterBox,
// and scale_boxes / scale_coords on the same float32 tensors. Image sizes are chosen so that the
// rounding goes every way (odd sizes, ratios whose padding rounds differently, thin images,
// images smaller than the input).
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { parseYoloLabels } from '../../src/runner/datasets/yolo-labels.ts';
import { letterboxGeometry, pointToOriginal, scaleBoxes, type Letterbox } from '../../src/runner/detection/letterbox.ts';
import { labelsToNetwork } from '../../src/runner/detection/ultralytics-labels.ts';
import { runReference } from '../support/reference-python.ts';

const SIZES: Array<[number, number]> = [
  [640, 480],
  [500, 333],
  [335, 517],
  [517, 335],
  [100, 51],
  [1280, 720],
  [639, 641],
  [10, 300],
  [300, 10],
  [33, 77],
  [4000, 3000],
  [641, 427],
  [123, 457],
  [999, 998],
];
const INPUTS: Array<[number, number]> = [
  [640, 640],
  [480, 640],
  [256, 320],
];

/** A random number generator with a seed, for reproducible label values. */
function rng(seed: number) {
  let s = seed;
  return () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
}

const f32 = Math.fround;

function labelText(r: () => number, kpts: number): string {
  const lines: string[] = [];
  for (let i = 0; i < 3; i++) {
    const [w, h] = [0.05 + r() * 0.5, 0.05 + r() * 0.5];
    const [cx, cy] = [w / 2 + r() * (1 - w), h / 2 + r() * (1 - h)];
    const k = Array.from({ length: kpts }, () => [r().toFixed(6), r().toFixed(6), String(Math.floor(r() * 3))]).flat();
    lines.push([i % 2, cx.toFixed(6), cy.toFixed(6), w.toFixed(6), h.toFixed(6), ...k].join(' '));
  }
  return `${lines.join('\n')}\n`;
}

const DATASET_SCRIPT = `
import json, sys
import numpy as np, torch
from ultralytics.cfg import get_cfg
from ultralytics.data.dataset import YOLODataset
from ultralytics.utils import ops
inp = json.load(open(sys.argv[1]))
out = {}
for case in inp['cases']:
    H, W = case['imgsz']
    data = {'names': {0: 'a', 1: 'b'}, 'channels': 3}
    if case['kpts']:
        data['kpt_shape'] = [case['kpts'], 3]
    ds = YOLODataset(img_path=case['images'], imgsz=[H, W], augment=False, rect=False, data=data,
                     task='pose' if case['kpts'] else 'detect', hyp=get_cfg(), batch_size=1)
    for i in range(len(ds)):
        item = ds[i]
        h, w = item['img'].shape[1:]
        boxes = ops.xywh2xyxy(item['bboxes']) * torch.tensor((h, w))[[1, 0, 1, 0]]
        entry = {
            'ori_shape': list(item['ori_shape']), 'resized_shape': list(item['resized_shape']),
            'ratio_pad': [list(map(float, item['ratio_pad'][0])), list(map(int, item['ratio_pad'][1]))],
            'img_shape': [h, w], 'boxes': boxes.numpy().astype(float).tolist(), 'cls': item['cls'].view(-1).tolist(),
        }
        if case['kpts']:
            k = item['keypoints'].clone()
            k[..., 0] *= w
            k[..., 1] *= h
            entry['keypoints'] = k.numpy().astype(float).tolist()
        out[f"{'pose' if case['kpts'] else 'detect'}/{H}x{W}/{item['im_file'].split('/')[-1]}"] = entry
print(json.dumps(out))
`;

const LETTERBOX_SCRIPT = `
import json, sys
import numpy as np, torch
from ultralytics.data.augment import LetterBox
from ultralytics.utils import ops
inp = json.load(open(sys.argv[1]))
out = []
for c in inp['cases']:
    H, W = c['imgsz']
    h0, w0 = c['shape']
    p = LetterBox(new_shape=(H, W), auto=False, scaleup=True).get_params({'img': np.zeros((h0, w0, 3), np.uint8)})
    boxes = torch.tensor(c['boxes'], dtype=torch.float32)
    back = ops.scale_boxes((H, W), boxes.clone(), (h0, w0))
    pts = torch.tensor(c['points'], dtype=torch.float32).view(-1, 1, 3)
    coords = ops.scale_coords((H, W), pts.clone(), (h0, w0))
    rp = c['ratio_pad']
    back_val = ops.scale_boxes((H, W), boxes.clone(), (h0, w0), ratio_pad=((rp[0][0], rp[0][1]), (rp[1][0], rp[1][1])))
    out.append({'new_unpad': list(p['new_unpad']), 'top': p['top'], 'bottom': p['bottom'], 'left': p['left'], 'right': p['right'],
                'back': back.numpy().astype(float).tolist(), 'coords': coords.view(-1, 3)[:, :2].numpy().astype(float).tolist(),
                'back_val': back_val.numpy().astype(float).tolist()})
print(json.dumps(out))
`;

describe('yolo val: load_image, LetterBox(scaleup=False), ratio_pad and labels in network pixels', () => {
  let dir: string;
  let reference: Record<
    string,
    {
      ori_shape: number[];
      resized_shape: number[];
      ratio_pad: [number[], number[]];
      img_shape: number[];
      boxes: number[][];
      cls: number[];
      keypoints?: number[][][];
    }
  >;
  const labels = new Map<string, string>();

  beforeAll(async () => {
    dir = mkdtempSync(join(process.env.KINFER_TEST_DIR!, 'ul-geometry-'));
    const r = rng(42);
    const cases = [];
    for (const kpts of [0, 5]) {
      const root = join(dir, kpts ? 'pose' : 'detect');
      mkdirSync(join(root, 'images'), { recursive: true });
      mkdirSync(join(root, 'labels'), { recursive: true });
      for (const [w, h] of SIZES) {
        const name = `${w}x${h}`;
        await sharp({ create: { width: w, height: h, channels: 3, background: { r: 200, g: 30, b: 60 } } })
          .png()
          .toFile(join(root, 'images', `${name}.png`));
        const text = labelText(r, kpts);
        labels.set(`${kpts}/${name}`, text);
        writeFileSync(join(root, 'labels', `${name}.txt`), text);
      }
      for (const imgsz of INPUTS) cases.push({ images: join(root, 'images'), imgsz, kpts });
    }
    reference = runReference(DATASET_SCRIPT, { cases });
  }, 300_000);

  it.each(INPUTS.flatMap((input) => SIZES.map((size) => [input, size] as const)))('input %j, image %j: the same geometry', (input, [w, h]) => {
    const ref = reference[`detect/${input[0]}x${input[1]}/${w}x${h}.png`]!;
    const g = letterboxGeometry(w, h, input, 'val');
    expect(ref.ori_shape).toEqual([h, w]);
    // After LetterBox, resized_shape is the letterboxed image's.
    expect(ref.resized_shape).toEqual(input);
    expect([g.left, g.top]).toEqual(ref.ratio_pad[1]);
    // ratio_pad gains (h, w), exactly.
    expect([g.gainY, g.gainX]).toEqual(ref.ratio_pad[0]);
    expect(ref.img_shape).toEqual(input);
    expect(g.top + g.height + g.bottom).toBe(input[0]);
    expect(g.left + g.width + g.right).toBe(input[1]);
  });

  it.each(INPUTS.flatMap((input) => SIZES.map((size) => [input, size] as const)))(
    'input %j, image %j: labels land on the same float32 pixels',
    (input, [w, h]) => {
      for (const kpts of [0, 5]) {
        const expected = reference[`${kpts ? 'pose' : 'detect'}/${input[0]}x${input[1]}/${w}x${h}.png`]!;
        const gts = parseYoloLabels(labels.get(`${kpts}/${w}x${h}`)!, {
          task: kpts ? 'pose_estimation' : 'object_detection',
          numClasses: 2,
          kptShape: kpts ? [kpts, 3] : undefined,
          imageId: 0,
          firstId: 1,
          width: w,
          height: h,
        });
        const g = letterboxGeometry(w, h, input, 'val');
        const net = labelsToNetwork(gts, { geometry: g, original: { width: w, height: h }, inputSize: input, classOf: (c) => c });
        expect(Array.from(net.boxes)).toEqual(expected.boxes.flat());
        expect(Array.from(net.classes)).toEqual(expected.cls);
        if (kpts) expect(Array.from(net.keypoints!)).toEqual(expected.keypoints!.flat(2));
      }
    },
  );
});

describe('yolo predict: LetterBox, and the way back (scale_boxes, scale_coords)', () => {
  const r = rng(7);
  // yolo val refuses images under 10 pixels a side; predict takes them.
  const cases = INPUTS.flatMap((imgsz) =>
    [...SIZES, [1, 300] as [number, number], [300, 1] as [number, number]].map(([w, h]) => {
      const val = letterboxGeometry(w, h, imgsz, 'val');
      // Boxes and points anywhere in the input, some in the padding and beyond the image.
      const boxes = Array.from({ length: 6 }, () => {
        const [x1, y1] = [f32(r() * imgsz[1] * 1.1 - 20), f32(r() * imgsz[0] * 1.1 - 20)];
        return [x1, y1, f32(x1 + r() * 200), f32(y1 + r() * 200)];
      });
      const points = Array.from({ length: 6 }, () => [f32(r() * imgsz[1]), f32(r() * imgsz[0]), 1]);
      return {
        imgsz,
        shape: [h, w],
        boxes,
        points,
        ratio_pad: [
          [val.gainY, val.gainX],
          [val.left, val.top],
        ],
        val,
      };
    }),
  );
  let reference: Array<{
    new_unpad: number[];
    top: number;
    bottom: number;
    left: number;
    right: number;
    back: number[][];
    coords: number[][];
    back_val: number[][];
  }>;

  beforeAll(() => {
    reference = runReference(LETTERBOX_SCRIPT, { cases: cases.map(({ val: _v, ...c }) => c) });
  }, 300_000);

  it('gives the same resized size and padding for every image and input size', () => {
    cases.forEach((c, i) => {
      const g = letterboxGeometry(c.shape[1]!, c.shape[0]!, c.imgsz as [number, number], 'predict');
      expect([c.imgsz, c.shape, g.width, g.height, g.top, g.bottom, g.left, g.right]).toEqual([
        c.imgsz,
        c.shape,
        ...reference[i]!.new_unpad,
        reference[i]!.top,
        reference[i]!.bottom,
        reference[i]!.left,
        reference[i]!.right,
      ]);
    });
  });

  it('maps boxes and points back to the same float32 pixels, clipped, in both modes', () => {
    cases.forEach((c, i) => {
      const original = { width: c.shape[1]!, height: c.shape[0]! };
      const predict: Letterbox = letterboxGeometry(original.width, original.height, c.imgsz as [number, number], 'predict');
      expect([c.imgsz, c.shape, scaleBoxes(c.boxes, predict, original)]).toEqual([c.imgsz, c.shape, reference[i]!.back]);
      expect([c.imgsz, c.shape, scaleBoxes(c.boxes, c.val, original)]).toEqual([c.imgsz, c.shape, reference[i]!.back_val]);
      expect(c.points.map(([x, y]) => pointToOriginal(x!, y!, predict, original))).toEqual(reference[i]!.coords);
    });
  });
});
