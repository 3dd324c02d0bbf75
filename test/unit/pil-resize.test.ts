// Classification preprocessing against Pillow and torchvision themselves: Pillow's bilinear and
// bicubic resize (what torchvision's Resize does to a PIL image, in `yolo val` for classification
// and in torchvision/timm reference evaluations) must give the same bytes, up and down, on noisy
// images of odd sizes (in both pass orders); ToTensor + Normalize the same float32 values; and the whole of
// classify_transforms (Resize, CenterCrop, ToTensor, Normalize) the same tensor.
import sharp from 'sharp';
import { pilResize, type PilFilter } from '../../src/runner/classification/pil-resize.ts';
import { hwcToChw, preprocessClassification, resizedSize, roundHalfEven } from '../../src/runner/classification/preprocess.ts';
import { runReference } from '../support/reference-python.ts';
import { rng } from '../../src/samples/images.ts';

/** Smooth gradients plus noise: edges everywhere, so every coefficient matters. */
function image(width: number, height: number, seed: number): Uint8Array {
  const r = rng(seed);
  const px = new Uint8Array(width * height * 3);
  const f = [r() * 0.2, r() * 0.2, r() * 0.2];
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      for (let c = 0; c < 3; c++)
        px[(y * width + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(128 + 90 * Math.sin(x * f[c]! + y * f[(c + 1) % 3]!) + (r() - 0.5) * 80)));
  return px;
}

interface ResizeCase {
  w: number;
  h: number;
  ow: number;
  oh: number;
  filter: PilFilter;
}
const RESIZES: ResizeCase[] = [
  { w: 500, h: 375, ow: 298, oh: 224, filter: 'bilinear' },
  { w: 375, h: 500, ow: 256, oh: 341, filter: 'bicubic' },
  { w: 50, h: 37, ow: 302, oh: 224, filter: 'bilinear' },
  { w: 61, h: 97, ow: 224, oh: 356, filter: 'bicubic' },
  { w: 1000, h: 333, ow: 672, oh: 224, filter: 'bilinear' },
  { w: 224, h: 300, ow: 224, oh: 300, filter: 'bilinear' },
  { w: 224, h: 300, ow: 224, oh: 233, filter: 'bicubic' },
  { w: 3, h: 2, ow: 17, oh: 1, filter: 'bicubic' },
  // The height shrinks more than twice as much as the width: Pillow runs the vertical pass first.
  { w: 300, h: 1000, ow: 224, oh: 300, filter: 'bilinear' },
];

const SCRIPT = `
import json, sys
import numpy as np, torch
from PIL import Image
import torchvision.transforms as T
inp = json.load(open(sys.argv[1]))
out = {'resized': [], 'tensors': []}
for c in inp['resizes']:
    im = Image.fromarray(np.array(c['pixels'], dtype=np.uint8).reshape(c['h'], c['w'], 3), 'RGB')
    r = im.resize((c['ow'], c['oh']), Image.Resampling.BILINEAR if c['filter'] == 'bilinear' else Image.Resampling.BICUBIC)
    out['resized'].append(np.asarray(r).reshape(-1).tolist())
for c in inp['transforms']:
    im = Image.fromarray(np.array(c['pixels'], dtype=np.uint8).reshape(c['h'], c['w'], 3), 'RGB')
    t = T.Compose([T.Resize(c['resize'], interpolation=T.InterpolationMode.BILINEAR if c['filter'] == 'bilinear' else T.InterpolationMode.BICUBIC),
                   T.CenterCrop(c['crop']), T.ToTensor(), T.Normalize(mean=torch.tensor(c['mean']), std=torch.tensor(c['std']))])(im)
    out['tensors'].append(t.numpy().astype(np.float64).reshape(-1).tolist())
print(json.dumps(out))
`;

const TRANSFORMS = [
  // classify_transforms(224): Resize(224), CenterCrop(224), mean 0, std 1.
  { w: 500, h: 375, resize: 224, crop: 224, mean: [0, 0, 0], std: [1, 1, 1], filter: 'bilinear' as const },
  { w: 97, h: 61, resize: 224, crop: 224, mean: [0, 0, 0], std: [1, 1, 1], filter: 'bilinear' as const },
  { w: 333, h: 1000, resize: 224, crop: 224, mean: [0, 0, 0], std: [1, 1, 1], filter: 'bilinear' as const },
  // torchvision's ImageNet evaluation: Resize(256), CenterCrop(224), ImageNet mean and std; timm's bicubic.
  { w: 640, h: 427, resize: 256, crop: 224, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], filter: 'bilinear' as const },
  { w: 333, h: 517, resize: 248, crop: 224, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], filter: 'bicubic' as const },
];

describe("classification preprocessing identical to Pillow's resize and torchvision's transforms", () => {
  let reference: { resized: number[][]; tensors: number[][] };
  const pixels = RESIZES.map((c, i) => image(c.w, c.h, i + 1));
  const transformPixels = TRANSFORMS.map((c, i) => image(c.w, c.h, 100 + i));

  beforeAll(() => {
    reference = runReference(SCRIPT, {
      resizes: RESIZES.map((c, i) => ({ ...c, pixels: Array.from(pixels[i]!) })),
      transforms: TRANSFORMS.map((c, i) => ({ ...c, pixels: Array.from(transformPixels[i]!) })),
    });
  }, 300_000);

  it.each(RESIZES.map((c, i) => [`${c.w}x${c.h} to ${c.ow}x${c.oh}, ${c.filter}`, i] as const))('resize %s: the same bytes', (_name, i) => {
    const c = RESIZES[i]!;
    const mine = pilResize(pixels[i]!, c.w, c.h, 3, c.ow, c.oh, undefined, c.filter);
    const want = reference.resized[i]!;
    expect(mine.length).toBe(want.length);
    const differing = mine.reduce((n, v, k) => n + (v !== want[k] ? 1 : 0), 0);
    expect(differing).toBe(0);
  });

  it.each([
    [0, { left: 37, top: 11, width: 200, height: 150 }],
    [1, { left: 16, top: 58, width: 224, height: 224 }],
    [4, { left: 224, top: 0, width: 224, height: 224 }],
    [5, { left: 0, top: 40, width: 224, height: 224 }],
    [8, { left: 3, top: 30, width: 200, height: 224 }],
  ] as const)('computes a crop window of the resize (case %i) as the whole resize then the crop', (i, crop) => {
    const c = RESIZES[i]!;
    // The whole resize is Pillow's own bytes (checked above).
    const whole = reference.resized[i]!;
    const window = pilResize(pixels[i]!, c.w, c.h, 3, c.ow, c.oh, crop, c.filter);
    for (let y = 0; y < crop.height; y++) {
      const from = ((crop.top + y) * c.ow + crop.left) * 3;
      expect(Array.from(window.subarray(y * crop.width * 3, (y + 1) * crop.width * 3))).toEqual(whole.slice(from, from + crop.width * 3));
    }
  });

  it.each(TRANSFORMS.map((c, i) => [`${c.w}x${c.h}, Resize(${c.resize}), CenterCrop(${c.crop}), ${c.filter}`, i] as const))(
    'transform %s: the same float32 tensor',
    async (_name, i) => {
      const c = TRANSFORMS[i]!;
      const png = await sharp(Buffer.from(transformPixels[i]!), { raw: { width: c.w, height: c.h, channels: 3 } })
        .png()
        .toBuffer();
      const t = await preprocessClassification(png, {
        inputSize: [c.crop, c.crop],
        resizeShorter: c.resize,
        interpolation: c.filter,
        mean: c.mean as [number, number, number],
        std: c.std as [number, number, number],
      });
      const want = reference.tensors[i]!;
      expect(t.length).toBe(want.length);
      let differing = 0;
      for (let k = 0; k < t.length; k++) if (t[k] !== want[k]) differing++;
      expect(differing).toBe(0);
      // The pieces agree with the whole: the crop offsets as torchvision rounds them.
      const [rw, rh] = resizedSize(c.w, c.h, c.resize, [c.crop, c.crop]);
      expect(roundHalfEven((rw - c.crop) / 2)).toBeGreaterThanOrEqual(0);
      expect(hwcToChw(new Uint8Array([255, 0, 0]), 1, [0, 0, 0], [1, 1, 1])[0]).toBe(1);
      void rh;
    },
  );
});
