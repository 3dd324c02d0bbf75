import fc from 'fast-check';
import sharp from 'sharp';
import { preprocessClassification, resizedSize, roundHalfEven } from '../../src/runner/classification/preprocess.ts';
import { toProbabilities, topK } from '../../src/runner/classification/postprocess.ts';

/** An image whose left half is red and right half blue. */
async function halves(width: number, height: number, orientation?: number): Promise<Buffer> {
  const px = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      if (x < width / 2) px[o] = 255;
      else px[o + 2] = 255;
    }
  }
  let img = sharp(px, { raw: { width, height, channels: 3 } });
  if (orientation) img = img.withMetadata({ orientation });
  return img.png().toBuffer();
}

const plain = { mean: [0, 0, 0] as [number, number, number], std: [1, 1, 1] as [number, number, number], interpolation: 'bilinear' as const };
/** (channel, row, col) of a CHW tensor. */
const at = (t: Float32Array, size: number, c: number, y: number, x: number) => t[c * size * size + y * size + x]!;

describe('classification preprocessing', () => {
  it('rounds like Python (half to even), as torchvision crop offsets do', () => {
    expect([0.5, 1.5, 2.5, -0.5, -0.1, 2.4, 2.6].map(roundHalfEven)).toEqual([0, 2, 2, 0, 0, 2, 3]);
  });

  it('resizes the shorter side and truncates the longer one, as torchvision Resize(int)', () => {
    expect(resizedSize(640, 480, 256, [224, 224])).toEqual([341, 256]); // int(256 * 640 / 480) = 341
    expect(resizedSize(480, 640, 256, [224, 224])).toEqual([256, 341]);
    expect(resizedSize(500, 500, 224, [224, 224])).toEqual([224, 224]);
  });

  it('center-crops after resizing: a 40x20 red|blue image keeps red on the left, blue on the right', async () => {
    const t = await preprocessClassification(await halves(40, 20), { inputSize: [10, 10], resizeShorter: 10, ...plain });
    // Resized to 20x10, crop columns 5..14: original columns 10..29, red up to column 19.
    expect(at(t, 10, 0, 5, 1)).toBeCloseTo(1, 2); // red channel, left
    expect(at(t, 10, 2, 5, 1)).toBeCloseTo(0, 2);
    expect(at(t, 10, 2, 5, 8)).toBeCloseTo(1, 2); // blue channel, right
    expect(at(t, 10, 0, 5, 8)).toBeCloseTo(0, 2);
  });

  it('applies EXIF orientation before cropping', async () => {
    // Stored 20x40 (left red, right blue), orientation 6 = rotate 90 degrees clockwise to display:
    // displayed 40x20 with red on top. Ignoring the tag would put blue at the top right.
    const t = await preprocessClassification(await halves(20, 40, 6), { inputSize: [10, 10], resizeShorter: 10, ...plain });
    expect(at(t, 10, 0, 1, 8)).toBeCloseTo(1, 2);
    expect(at(t, 10, 2, 8, 8)).toBeCloseTo(1, 2);
  });

  it('normalizes with the declared mean and std', async () => {
    const red = await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 255, g: 0, b: 51 } } })
      .png()
      .toBuffer();
    const t = await preprocessClassification(red, {
      inputSize: [4, 4],
      resizeShorter: 4,
      mean: [0.5, 0.5, 0.1],
      std: [0.5, 0.25, 0.1],
      interpolation: 'bilinear',
    });
    expect(at(t, 4, 0, 2, 2)).toBeCloseTo((1 - 0.5) / 0.5, 4);
    expect(at(t, 4, 1, 2, 2)).toBeCloseTo((0 - 0.5) / 0.25, 4);
    expect(at(t, 4, 2, 2, 2)).toBeCloseTo((0.2 - 0.1) / 0.1, 4);
  });

  it('reports an undecodable file as a decode error', async () => {
    await expect(preprocessClassification(Buffer.from('not an image'), { inputSize: [4, 4], resizeShorter: 4, ...plain })).rejects.toMatchObject({
      code: 'IMAGE_DECODE_FAILED',
    });
  });
});

describe('classification postprocessing', () => {
  it('keeps probabilities as they are and softmaxes logits', () => {
    const probs = new Float32Array([0.1, 0.7, 0.2]);
    expect(toProbabilities(probs)).toBe(probs);
    const logits = toProbabilities(new Float32Array([1, 2, 3]));
    const e = [Math.exp(1), Math.exp(2), Math.exp(3)];
    const s = e[0]! + e[1]! + e[2]!;
    e.forEach((v, i) => expect(logits[i]).toBeCloseTo(v / s, 6));
  });

  it('ranks the best classes first, ties by class id', () => {
    const ranked = topK(new Float32Array([0.2, 0.5, 0.2, 0.1]), 3, ['a', 'b', 'c', 'd']);
    expect(ranked.map((r) => r.class_name)).toEqual(['b', 'a', 'c']);
  });

  it('ranks as a full sort by score, then class id, does (any k, many ties)', () => {
    // Few distinct values, so that ties are the rule; k beyond the class count too.
    const scores = fc.array(fc.integer({ min: 0, max: 6 }), { minLength: 1, maxLength: 80 }).map((a) => Float32Array.from(a, (v) => v / 8));
    fc.assert(
      fc.property(scores, fc.integer({ min: 0, max: 90 }), (probs, k) => {
        const sorted = Array.from(probs.keys()).sort((a, b) => probs[b]! - probs[a]! || a - b);
        expect(topK(probs, k, []).map((r) => r.class_id)).toEqual(sorted.slice(0, k));
      }),
      { numRuns: 500 },
    );
  });
});
