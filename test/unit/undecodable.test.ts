// An image that cannot be decoded gets the same reason every time, whatever else is decoded at
// the same moment: libvips' error buffer is one for the process, and with the runner's concurrent
// decodes sharp's messages carried other images' errors, or nothing (src/runner/image/undecodable.ts).
import sharp from 'sharp';
import { preprocessClassification } from '../../src/runner/classification/preprocess.ts';
import { letterboxTensor } from '../../src/runner/detection/letterbox.ts';
import { describeBytes } from '../../src/runner/image/undecodable.ts';

const noise = (w: number, h: number) => {
  const px = Buffer.alloc(w * h * 3);
  for (let i = 0; i < px.length; i++) px[i] = (i * 2654435761) >>> 24;
  return sharp(px, { raw: { width: w, height: h, channels: 3 } });
};

const plain = { mean: [0, 0, 0] as [number, number, number], std: [1, 1, 1] as [number, number, number], interpolation: 'bilinear' as const };
const classify = (b: Uint8Array) => preprocessClassification(b, { inputSize: [8, 8], resizeShorter: 8, ...plain });
const letterbox = (b: Uint8Array) => letterboxTensor(b, [32, 32], plain);
const reasonOf = (p: Promise<unknown>) =>
  p.then(
    () => 'decoded',
    (err: Error) => err.message,
  );

describe('an undecodable image', () => {
  let cases: Array<{ bytes: Uint8Array; reason: string }>;

  beforeAll(async () => {
    const jpeg = await noise(64, 48).jpeg().toBuffer();
    const png = await noise(64, 48).png().toBuffer();
    const cutJpeg = jpeg.subarray(0, 300);
    const cutPng = png.subarray(0, 60);
    const text = Buffer.from('<html>not found</html>');
    cases = [
      { bytes: cutJpeg, reason: 'cannot decode image: Input buffer has corrupt header (JPEG data, 300 bytes, cut short: no end-of-image marker at its end)' },
      { bytes: cutPng, reason: 'cannot decode image: Input buffer has corrupt header (PNG data, 60 bytes, cut short: no IEND chunk at its end)' },
      {
        bytes: text,
        reason: `cannot decode image: Input buffer contains unsupported image format (${text.length} bytes, no image format's signature: starts 3c 68 74 6d 6c 3e 6e 6f)`,
      },
      // A whole file that decodes: the others' failures around it do not touch it.
      { bytes: jpeg, reason: 'decoded' },
    ];
  });

  it('is said by the bytes it is: format, size, and where a file is cut short', () => {
    expect(describeBytes(new Uint8Array())).toBe('an empty file');
    expect(describeBytes(Uint8Array.of(0xff, 0xd8, 0xff, 0xe0, 0xff, 0xd9))).toBe('JPEG data, 6 bytes');
    expect(describeBytes(Uint8Array.of(0x47, 0x49, 0x46, 0x38, 0x39, 0x61))).toBe('GIF data, 6 bytes');
    expect(describeBytes(new Uint8Array(12_345).fill(7))).toBe("12,345 bytes, no image format's signature: starts 07 07 07 07 07 07 07 07");
  });

  it.each([
    ['classification', classify],
    ['the letterbox', letterbox],
  ])('gets one reason, alone or among 32 concurrent decodes (%s)', async (_, decode) => {
    for (const c of cases) expect(await reasonOf(decode(c.bytes))).toBe(c.reason);
    const mixed = Array.from({ length: 32 }, (_, i) => cases[i % cases.length]!);
    expect(await Promise.all(mixed.map((c) => reasonOf(decode(c.bytes))))).toEqual(mixed.map((c) => c.reason));
  });
});
