// The preprocessing nodes put in front of a model (uint8 NHWC in) give, bit for bit, what the
// runner's JavaScript conversion gives (hwcToChw: ToTensor's /255 and Normalize in float32), which
// the fidelity tests hold against torchvision and Ultralytics; checked by running the edited model
// in ONNX Runtime over every byte value in every channel.
import { hwcToChw } from '../../src/runner/classification/preprocess.ts';
import { WorkerSession } from '../../src/runner/inference/inference-session.ts';
import { UINT8_INPUT, withUint8Input } from '../../src/runner/model/uint8-input.ts';
import { GraphBuilder } from '../../src/samples/onnx-writer.ts';

/** A model that returns its float NCHW input (times one, so the graph has a real node). */
function identityModel(h: number, w: number): Uint8Array {
  const g = new GraphBuilder();
  const x = g.input('images', ['batch', 3, h, w]);
  g.node('Mul', [x, g.weight('one', [1], Float32Array.of(1))], {}, 'out');
  g.output('out', ['batch', 3, h, w]);
  return g.toModel();
}

/** Through the runner's own session worker, as a job runs it. */
async function run(model: Uint8Array, pixels: Uint8Array, dims: number[]): Promise<Float32Array> {
  const { session, info } = await WorkerSession.open(model, { executionProviders: ['cpu'], intraOpNumThreads: 2 });
  try {
    expect(info.inputNames).toEqual([UINT8_INPUT]);
    const { outputs } = await session.run(pixels.slice(), dims);
    return new Float32Array(outputs[0]!.data);
  } finally {
    await session.close();
  }
}

describe('uint8 input', () => {
  // Every byte value in every channel, twice (two images in the batch), in a 16x16 picture.
  const [h, w] = [16, 16];
  const plane = h * w;
  const pixels = Uint8Array.from({ length: 2 * plane * 3 }, (_, i) => (i * 7 + (i >> 8)) % 256);
  const expected = (norm: { mean: [number, number, number]; std: [number, number, number] }) => {
    const out = new Float32Array(2 * 3 * plane);
    for (let b = 0; b < 2; b++) out.set(hwcToChw(pixels.subarray(b * plane * 3, (b + 1) * plane * 3), plane, norm.mean, norm.std), b * 3 * plane);
    return out;
  };

  it.each([
    ['ImageNet mean and std', { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] }],
    ['x / 255 (Ultralytics)', { mean: [0, 0, 0], std: [1, 1, 1] }],
    ['CLIP', { mean: [0.48145466, 0.4578275, 0.40821073], std: [0.26862954, 0.26130258, 0.27577711] }],
  ] as const)('%s: the same float32 values as the JavaScript conversion', async (_name, norm) => {
    const model = withUint8Input(identityModel(h, w), 'images', [-1, 3, h, w], { mean: [...norm.mean], std: [...norm.std] });
    const got = await run(model, pixels, [2, h, w, 3]);
    const want = expected({ mean: [...norm.mean], std: [...norm.std] });
    expect(got.length).toBe(want.length);
    let differing = 0;
    for (let i = 0; i < got.length; i++) if (!Object.is(got[i], want[i])) differing++;
    expect(differing).toBe(0);
  });

  it('covers every byte value in each channel', () => {
    for (let c = 0; c < 3; c++) {
      const seen = new Set<number>();
      for (let i = c; i < pixels.length; i += 3) seen.add(pixels[i]!);
      expect(seen.size).toBe(256);
    }
  });
});
