// Decoding against OpenCV's imread itself (what Ultralytics reads every image with, for detection
// and for classification): the same bytes for JPEGs libjpeg-turbo decodes directly (4:2:0, 4:4:4,
// 4:2:2, progressive, grey, odd sizes, an embedded ICC profile, which neither OpenCV nor Pillow
// applies) and for those left to sharp (EXIF rotations, PNG), with either decoder setting; the
// EXIF orientation read from the markers as libvips reads it; the letterbox decoded straight into
// its canvas the same as through sharp.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import sharp from 'sharp';
import { letterbox } from '../../src/runner/detection/letterbox.ts';
import { decodeRgb, directJpeg, transientRgb, useJpegDecoder } from '../../src/runner/image/decode-rgb.ts';
import { jpegOrientation } from '../../src/runner/image/exif-orientation.ts';
import { turboJpeg } from '../../src/runner/image/turbo-jpeg.ts';
import { rng } from '../../src/samples/images.ts';
import { runReference } from '../support/reference-python.ts';

/** Gradients plus noise: every coefficient and every chroma sample matters. */
function pixels(width: number, height: number, seed: number): Buffer {
  const r = rng(seed);
  const px = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      for (let c = 0; c < 3; c++) px[(y * width + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(((x * (c + 1) + y * (3 - c)) % 256) + (r() - 0.5) * 60)));
  return px;
}

interface Case {
  name: string;
  /** Whether libjpeg-turbo takes it directly (else sharp). */
  direct: boolean;
  make: () => Promise<Buffer>;
}

const raw = (w: number, h: number, seed: number) => sharp(pixels(w, h, seed), { raw: { width: w, height: h, channels: 3 } });
const CASES: Case[] = [
  { name: '4:2:0, 640x480', direct: true, make: () => raw(640, 480, 1).jpeg({ quality: 90 }).toBuffer() },
  { name: '4:2:0, odd size 37x23', direct: true, make: () => raw(37, 23, 2).jpeg({ quality: 75 }).toBuffer() },
  { name: '4:4:4, 101x67', direct: true, make: () => raw(101, 67, 3).jpeg({ quality: 95, chromaSubsampling: '4:4:4' }).toBuffer() },
  { name: 'progressive, 4:2:0, 130x97', direct: true, make: () => raw(130, 97, 4).jpeg({ quality: 80, progressive: true }).toBuffer() },
  { name: 'grey, 75x50', direct: true, make: () => raw(75, 50, 5).toColourspace('b-w').jpeg({ quality: 85 }).toBuffer() },
  { name: 'Display P3 ICC profile, 64x48', direct: true, make: () => raw(64, 48, 6).withIccProfile('p3').jpeg({ quality: 90 }).toBuffer() },
  { name: 'EXIF orientation 6, 60x40', direct: false, make: () => raw(60, 40, 7).withMetadata({ orientation: 6 }).jpeg({ quality: 90 }).toBuffer() },
  {
    name: 'EXIF orientation 3 with ICC, 50x30',
    direct: false,
    make: () => raw(50, 30, 8).withIccProfile('p3').withMetadata({ orientation: 3 }).jpeg().toBuffer(),
  },
  { name: 'PNG, 33x21', direct: false, make: () => raw(33, 21, 9).png().toBuffer() },
];

const SCRIPT = `
import json, sys
import cv2
inp = json.load(open(sys.argv[1]))
out = []
for path in inp['files']:
    im = cv2.cvtColor(cv2.imread(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    out.append({'width': im.shape[1], 'height': im.shape[0], 'hex': im.tobytes().hex()})
print(json.dumps(out))
`;

describe("decoding identical to OpenCV's imread", () => {
  const files: Buffer[] = [];
  let reference: Array<{ width: number; height: number; hex: string }>;

  beforeAll(async () => {
    const dir = mkdtempSync(join(process.env.KINFER_TEST_DIR ?? '/tmp', 'decode-'));
    const paths: string[] = [];
    for (const [i, c] of CASES.entries()) {
      files.push(await c.make());
      paths.push(join(dir, `case-${i}.${c.name.startsWith('PNG') ? 'png' : 'jpg'}`));
      writeFileSync(paths[i]!, files[i]!);
    }
    reference = runReference(SCRIPT, { files: paths });
  }, 300_000);
  afterEach(() => useJpegDecoder('auto'));

  it('has libjpeg-turbo on this machine (else every JPEG goes to sharp)', () => {
    expect(turboJpeg()?.path).toMatch(/turbojpeg/);
  });

  it.each(CASES.map((c, i) => [c.name, i] as const))('%s: the same pixels with either decoder setting', async (_name, i) => {
    const want = reference[i]!;
    expect(directJpeg(files[i]!) !== undefined).toBe(CASES[i]!.direct);
    for (const setting of ['auto', 'sharp'] as const) {
      useJpegDecoder(setting);
      const got = await decodeRgb(files[i]!);
      expect([setting, got.width, got.height]).toEqual([setting, want.width, want.height]);
      expect(got.data.toString('hex')).toBe(want.hex);
      const transient = transientRgb(files[i]!);
      if (setting === 'auto' && CASES[i]!.direct) expect(transient?.data.toString('hex')).toBe(want.hex);
      else expect(transient).toBeUndefined();
    }
  });

  it('reuses one buffer for transient decodes, and gives each decodeRgb its own', async () => {
    const a = transientRgb(files[0]!)!;
    const b = transientRgb(files[0]!)!;
    expect(a.data.buffer).toBe(b.data.buffer);
    expect((await decodeRgb(files[0]!)).data.buffer).not.toBe((await decodeRgb(files[0]!)).data.buffer);
  });

  it('leaves a header that claims more pixels than sharp takes to sharp, which refuses it without allocating them', async () => {
    // The first frame header (SOF0) of a 640x480 JPEG rewritten to 30,000 x 30,000: 2.7 GB of pixels.
    const huge = Buffer.from(files[0]!);
    const sof = huge.indexOf(Buffer.from([0xff, 0xc0]));
    huge.writeUInt16BE(30_000, sof + 5);
    huge.writeUInt16BE(30_000, sof + 7);
    expect(turboJpeg()!.header(huge)).toMatchObject({ width: 30_000, height: 30_000 });
    expect(directJpeg(huge)).toBeUndefined();
    expect(transientRgb(huge)).toBeUndefined();
    await expect(decodeRgb(huge)).rejects.toThrow(/pixel limit/i);
  });

  it('decodes a large image off the event loop, into its own buffer, with the same pixels', async () => {
    const big = await raw(1500, 1000, 11).jpeg().toBuffer();
    expect(directJpeg(big)).toBeDefined();
    expect(transientRgb(big)).toBeUndefined();
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    const decoded = await Promise.all([decodeRgb(big), decodeRgb(big), decodeRgb(big)]);
    clearInterval(timer);
    // The event loop turned while three decodes ran on libuv's threads, each with its own handle.
    expect(ticks).toBeGreaterThan(0);
    const want = await sharp(big).raw().toBuffer();
    for (const d of decoded) expect([d.width, d.height, d.data.equals(want)]).toEqual([1500, 1000, true]);
    expect(decoded[0]!.data.buffer).not.toBe(decoded[1]!.data.buffer);
  });

  it('leaves a truncated JPEG to sharp, which refuses it', async () => {
    const cut = files[0]!.subarray(0, Math.floor(files[0]!.length / 2));
    expect(directJpeg(cut)).toBeDefined();
    expect(transientRgb(cut)).toBeUndefined();
    await expect(decodeRgb(cut)).rejects.toThrow(/premature|truncat|end of/i);
  });
});

describe('pictures encoded by libjpeg-turbo', () => {
  it.each([
    ['640x480', 640, 480],
    ['2,600 x 2,600 (a buffer of its own)', 2600, 2600],
  ] as const)('%s: a baseline 4:2:0 JPEG of the size, within a few levels of the pixels', async (_name, w, h) => {
    // Smooth gradients: what a JPEG at quality 85 keeps closely.
    const px = Buffer.alloc(w * h * 3);
    for (let i = 0; i < px.length; i++) px[i] = Math.floor(((i / 3) % w) / (w / 200)) + (i % 3) * 20;
    const jpeg = turboJpeg()!.encodeRgb(px, w, h, 85)!;
    const meta = await sharp(jpeg).metadata();
    expect([meta.format, meta.width, meta.height, meta.chromaSubsampling, meta.isProgressive]).toEqual(['jpeg', w, h, '4:2:0', false]);
    const back = await sharp(jpeg).raw().toBuffer();
    let err = 0;
    for (let i = 0; i < px.length; i++) err += Math.abs(back[i]! - px[i]!);
    expect(err / px.length).toBeLessThan(2);
    // A second picture does not see the first one's bytes (the kept buffer is copied out).
    const other = turboJpeg()!.encodeRgb(Buffer.alloc(w * h * 3), w, h, 85)!;
    expect(jpeg.equals(other)).toBe(false);
    expect((await sharp(jpeg).raw().toBuffer()).equals(back)).toBe(true);
  });
});

describe('EXIF orientation from the markers', () => {
  it('is what libvips reads, for every tag value, with or without ICC and XMP segments', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.option(fc.integer({ min: 1, max: 8 }), { nil: undefined }),
        fc.boolean(),
        fc.boolean(),
        fc.integer({ min: 1, max: 40 }),
        async (orientation, icc, xmp, w) => {
          let img = raw(w, 8, w);
          if (icc) img = img.withIccProfile('p3');
          if (orientation) img = img.withMetadata({ orientation });
          if (xmp) img = img.withXmp('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/></x:xmpmeta>');
          const bytes = await img.jpeg().toBuffer();
          expect(jpegOrientation(bytes)).toBe((await sharp(bytes).metadata()).orientation ?? 1);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('reads a big-endian (Motorola) TIFF header, and gives up on what it cannot read', () => {
    // SOI, APP1 "Exif\0\0", "MM", 42, IFD0 at 8: one entry, tag 0x0112 SHORT count 1 value 8.
    const tiff = [0x4d, 0x4d, 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 8, 0, 0, 0, 0, 0, 0];
    const app1 = [0x45, 0x78, 0x69, 0x66, 0, 0, ...tiff];
    const jpeg = (segment: number[]) => Uint8Array.from([0xff, 0xd8, 0xff, 0xe1, 0, segment.length + 2, ...segment, 0xff, 0xda, 0, 2]);
    expect(jpegOrientation(jpeg(app1))).toBe(8);
    // The tag with another type than SHORT, a segment cut short, not a JPEG at all.
    const long = [...app1];
    long[6 + 13] = 4;
    expect(jpegOrientation(jpeg(long))).toBeUndefined();
    expect(jpegOrientation(jpeg(app1).subarray(0, 20))).toBeUndefined();
    expect(jpegOrientation(Uint8Array.from([0x89, 0x50, 0x4e, 0x47]))).toBeUndefined();
  });
});

describe('letterbox decoded into its canvas', () => {
  it.each([
    ['640x480 into 640x640 (bars above and below)', 640, 480, 'predict'],
    ['480x640 into 640x640 (bars left and right)', 480, 640, 'predict'],
    ['640x480 in val mode', 640, 480, 'val'],
  ] as const)('%s: the same canvas as through sharp', async (_name, w, h, mode) => {
    const bytes = await raw(w, h, w + h)
      .jpeg({ quality: 90 })
      .toBuffer();
    useJpegDecoder('sharp');
    const viaSharp = await letterbox(bytes, [640, 640], mode);
    useJpegDecoder('auto');
    expect(directJpeg(bytes)).toBeDefined();
    const direct = await letterbox(bytes, [640, 640], mode);
    expect(direct.geometry).toEqual(viaSharp.geometry);
    expect(direct.pixels.length).toBe(640 * 640 * 3);
    expect(Buffer.compare(direct.pixels, viaSharp.pixels)).toBe(0);
    // The bars are grey 114.
    expect(direct.pixels[0]).toBe(114);
    expect(direct.pixels.at(-1)).toBe(114);
  });
});
