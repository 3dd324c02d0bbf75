// Both conversions of a uint8 NHWC input, the preprocessing nodes put in front of a model and the
// session worker's WebAssembly kernel, give bit for bit what the runner's JavaScript conversion
// gives (hwcToChw: ToTensor's /255 and Normalize in float32), which the fidelity tests hold against
// torchvision and Ultralytics; checked through ONNX Runtime over every byte value in every channel.
import fc from 'fast-check';
import { hwcToChw } from '../../src/runner/classification/preprocess.ts';
import { WorkerSession } from '../../src/runner/inference/inference-session.ts';
import { PlanarFloatConverter } from '../../src/runner/inference/planar-float.ts';
import { UINT8_INPUT, uint8ConversionSite, withUint8Input, type Normalization } from '../../src/runner/model/uint8-input.ts';
import { GraphBuilder } from '../../src/samples/onnx-writer.ts';

/** A model that returns its float NCHW input (times one, so the graph has a real node). */
function identityModel(h: number, w: number): Uint8Array {
  const g = new GraphBuilder();
  const x = g.input('images', ['batch', 3, h, w]);
  g.node('Mul', [x, g.weight('one', [1], Float32Array.of(1))], {}, 'out');
  g.output('out', ['batch', 3, h, w]);
  return g.toModel();
}

/**
 * Through the runner's own session worker, as a job runs it: the edited model (conversion in the
 * graph), or the model as it is with the worker converting (`conversion`). Batches sent at once.
 */
async function run(model: Uint8Array, batches: Uint8Array[], dims: number[], conversion?: Normalization): Promise<Float32Array[]> {
  const { session, info } = await WorkerSession.open(model, { executionProviders: ['cpu'], intraOpNumThreads: 2, uint8Conversion: conversion });
  try {
    expect(info.inputNames).toEqual([conversion ? 'images' : UINT8_INPUT]);
    const results = await Promise.all(batches.map((b) => session.run(b.slice(), dims)));
    return results.map((r) => new Float32Array(r.outputs[0]!.data));
  } finally {
    await session.close();
  }
}

const NORMALIZATIONS = [
  ['ImageNet mean and std', { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] }],
  ['x / 255 (Ultralytics)', { mean: [0, 0, 0], std: [1, 1, 1] }],
  ['CLIP', { mean: [0.48145466, 0.4578275, 0.40821073], std: [0.26862954, 0.26130258, 0.27577711] }],
] as const;

const normOf = (n: (typeof NORMALIZATIONS)[number][1]): Normalization => ({ mean: [...n.mean], std: [...n.std] });

/** hwcToChw of every image of a batch of `n`, one after the other. */
function expectedBatch(pixels: Uint8Array, n: number, plane: number, norm: Normalization): Float32Array {
  const out = new Float32Array(n * 3 * plane);
  for (let b = 0; b < n; b++) out.set(hwcToChw(pixels.subarray(b * plane * 3, (b + 1) * plane * 3), plane, norm.mean, norm.std), b * 3 * plane);
  return out;
}

/** How many values differ (Object.is: -0 and NaN count). */
function differing(got: Float32Array, want: Float32Array): number {
  expect(got.length).toBe(want.length);
  let n = 0;
  for (let i = 0; i < got.length; i++) if (!Object.is(got[i], want[i])) n++;
  return n;
}

describe('uint8 input', () => {
  // Every byte value in every channel, twice (two images in the batch), in a 16x16 picture.
  const [h, w] = [16, 16];
  const plane = h * w;
  const pixels = Uint8Array.from({ length: 2 * plane * 3 }, (_, i) => (i * 7 + (i >> 8)) % 256);

  it.each(NORMALIZATIONS)('%s: nodes in the graph give the same float32 values as the JavaScript conversion', async (_name, n) => {
    const norm = normOf(n);
    const [got] = await run(withUint8Input(identityModel(h, w), 'images', [-1, 3, h, w], norm), [pixels], [2, h, w, 3]);
    expect(differing(got!, expectedBatch(pixels, 2, plane, norm))).toBe(0);
  });

  it.each(NORMALIZATIONS)('%s: the session worker gives the same float32 values as the JavaScript conversion', async (_name, n) => {
    const norm = normOf(n);
    const [got] = await run(identityModel(h, w), [pixels], [2, h, w, 3], norm);
    expect(differing(got!, expectedBatch(pixels, 2, plane, norm))).toBe(0);
  });

  it('the session worker converts each of the batches sent at once into its own run', async () => {
    // The worker's converter has one memory: a batch converted before the run ahead of it had read
    // its own would make both runs return the later batch.
    const norm = normOf(NORMALIZATIONS[0][1]);
    const batches = [0, 1, 2].map((k) => pixels.map((v) => (v + 85 * k) % 256));
    const got = await run(identityModel(h, w), batches, [2, h, w, 3], norm);
    batches.forEach((b, k) => expect(differing(got[k]!, expectedBatch(b, 2, plane, norm))).toBe(0));
  });

  it('the kernel gives the JavaScript conversion at any size, the last pixels of an image included', () => {
    // Sixteen pixels a SIMD pass, the rest one at a time: sizes around the multiples of sixteen.
    const converters = NORMALIZATIONS.map(([, n]) => ({ norm: normOf(n), converter: new PlanarFloatConverter(normOf(n)) }));
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 40 }), fc.integer(), (n, ph, pw, seed) => {
        const batch = Uint8Array.from({ length: n * ph * pw * 3 }, (_, i) => (i * 131 + seed) & 255);
        for (const { norm, converter } of converters)
          expect(differing(converter.convert(batch, [n, ph, pw, 3]), expectedBatch(batch, n, ph * pw, norm))).toBe(0);
      }),
      { numRuns: 200 },
    );
  });

  it('the kernel refuses dims that do not describe the pixels', () => {
    const converter = new PlanarFloatConverter(normOf(NORMALIZATIONS[1][1]));
    expect(() => converter.convert(new Uint8Array(12), [1, 2, 2, 4])).toThrow(/dims \[1, 2, 2, 4\]/);
    expect(() => converter.convert(new Uint8Array(12), [1, 2, 3, 3])).toThrow(/12 RGB bytes/);
  });

  it("the conversion is the worker's on the CPU, the graph's on other providers", () => {
    expect(uint8ConversionSite(['cpu'])).toBe('worker');
    expect(uint8ConversionSite([])).toBe('worker');
    expect(uint8ConversionSite(['cuda', 'cpu'])).toBe('graph');
    expect(uint8ConversionSite(['cuda'])).toBe('graph');
  });

  it('covers every byte value in each channel', () => {
    for (let c = 0; c < 3; c++) {
      const seen = new Set<number>();
      for (let i = c; i < pixels.length; i += 3) seen.add(pixels[i]!);
      expect(seen.size).toBe(256);
    }
  });
});
