// Pictures of predictions, drawn on decoded pixels: where each shape lands and with what colour,
// checked against the palette and the blend formula written out here (exact on raw pixels; through
// JPEG only on flat areas, within a few levels).
import sharp from 'sharp';
import { CLASS_PALETTE, type DetectedObject } from '../../src/contract/index.ts';
import { encodeMask, rleToString } from '../../src/runner/segmentation/rle.ts';
import { RgbCanvas } from '../../src/runner/visualize/canvas.ts';
import { drawClassMap, drawObjects, paintClassMap, paintObjects } from '../../src/runner/visualize/draw.ts';
import { GlyphCache } from '../../src/runner/visualize/glyphs.ts';

const GREY = [100, 100, 100];
const rgbOf = (hex: string) => [0, 2, 4].map((i) => parseInt(hex.slice(i, i + 2), 16));
/** `top` over `bottom` at opacity alpha / 255, rounded: an RGBA layer composited over RGB. */
const over = (top: number[], bottom: number[], alpha: number) => top.map((c, i) => Math.round((c * alpha + bottom[i]! * (255 - alpha)) / 255));

function canvas(width: number, height: number, colour = GREY) {
  const data = Buffer.alloc(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = colour[i % 3]!;
  const c = new RgbCanvas(data, width, height);
  return { c, at: (x: number, y: number) => Array.from(data.subarray((y * width + x) * 3, (y * width + x) * 3 + 3)) };
}

const object = (o: Partial<DetectedObject> & { bbox: DetectedObject['bbox'] }): DetectedObject => ({
  class_id: 3,
  class_name: 'cat',
  category_id: 17,
  confidence: 0.5,
  ...o,
});

describe('paintObjects', () => {
  it('outlines a box in its class colour, labels it above, and leaves the rest of the image alone', async () => {
    // 800x600: strokes round(600 / 200) = 3 pixels wide, centred on the edges; labels of 20-pixel type.
    const { c, at } = canvas(800, 600);
    await paintObjects(c, [object({ bbox: [200, 200, 600, 500] })]);
    const colour = rgbOf(CLASS_PALETTE[3]);
    for (const [x, y] of [
      [199, 350],
      [201, 350],
      [599, 350],
      [400, 501],
      [400, 199],
    ])
      expect(at(x!, y!)).toEqual(colour);
    expect(at(197, 350)).toEqual(GREY);
    expect(at(202, 350)).toEqual(GREY);
    // The label's box sits on the box's top edge from x1 on; above the glyphs' ink it is plain colour.
    expect(at(200, 180)).toEqual(colour);
    expect(at(200, 170)).toEqual(GREY);
    // Its text is white where the glyphs are: some pixels of the label are lighter than the colour.
    const label = Array.from({ length: 60 * 20 }, (_, i) => at(200 + (i % 60), 178 + Math.floor(i / 60)));
    expect(label.some((p) => p[2]! > colour[2]! + 100)).toBe(true);
    expect(at(400, 350)).toEqual(GREY);
    expect(at(700, 550)).toEqual(GREY);
  });

  it('puts the label inside the box when there is no room above it', async () => {
    const { c, at } = canvas(800, 600);
    await paintObjects(c, [object({ bbox: [200, 5, 600, 500] })]);
    expect(at(200, 2)).toEqual(GREY);
    expect(at(205, 8)).toEqual(rgbOf(CLASS_PALETTE[3]));
  });

  it('fills an instance mask at the documented opacity, exactly where the mask is', async () => {
    const [W, H] = [320, 200];
    const mask = new Uint8Array(W * H);
    for (let y = 40; y < 120; y++) for (let x = 60; x < 200; x++) if ((x + y) % 7 !== 0) mask[y * W + x] = 1;
    const { c, at } = canvas(W, H);
    await paintObjects(c, [object({ class_id: 0, bbox: [60, 40, 200, 120], mask: { size: [H, W], counts: rleToString(encodeMask(mask, H, W)) } })]);
    const filled = over(rgbOf(CLASS_PALETTE[0]), GREY, 110);
    for (let y = 50; y < 110; y++) {
      for (let x = 70; x < 190; x++) expect([x, y, at(x, y)]).toEqual([x, y, (x + y) % 7 !== 0 ? filled : GREY]);
    }
    expect(at(250, 80)).toEqual(GREY);
  });

  it('draws a skeleton between confident keypoints only, with dots ringed in white', async () => {
    const kpts: number[] = [];
    for (let i = 0; i < 17; i++) kpts.push(20 + i * 10, 150, i === 16 ? 0.1 : 0.9);
    // Keypoints 6 and 12 (1-based) are a limb of COCO's skeleton: (70, 100) to (130, 100).
    kpts.splice(5 * 3, 3, 70, 100, 0.9);
    kpts.splice(11 * 3, 3, 130, 100, 0.9);
    const { c, at } = canvas(320, 200);
    await paintObjects(c, [object({ class_id: 1, bbox: [10, 60, 300, 190], keypoints: kpts })], 17);
    const colour = rgbOf(CLASS_PALETTE[1]);
    expect(at(100, 100)).toEqual(colour); // on the limb, away from both dots
    expect(at(70, 100)).toEqual(colour); // a dot's centre
    expect(at(71, 100)).toEqual([255, 255, 255]); // its ring (stroke 1: colour within 1.5 of the centre, white to 2.5)
    expect(at(20 + 16 * 10, 150)).toEqual(GREY); // keypoint 17 is not confident: no dot
    expect(at(100, 125)).toEqual(GREY);
  });

  it('draws labels with real glyphs: wider letters leave more ink', async () => {
    const ink = async (name: string) => {
      const { c } = canvas(600, 600, [0, 0, 0]);
      await paintObjects(c, [object({ class_id: 0, class_name: name, bbox: [20, 80, 300, 150] })]);
      return c.data.reduce((sum, v) => sum + v, 0);
    };
    expect((await ink('WWWW')) - (await ink('iiii'))).toBeGreaterThan(20 * 255);
  });
});

describe('paintClassMap', () => {
  it('blends every class but 0 at half opacity', () => {
    const { c, at } = canvas(30, 20);
    const map = new Uint16Array(30 * 20);
    map.fill(2, 0, 30 * 5);
    map[30 * 10 + 7] = 21; // past the palette's 20 colours: cycles to colour 1
    paintClassMap(c, map, 30, 20);
    expect(at(4, 2)).toEqual(over(rgbOf(CLASS_PALETTE[2]), GREY, 128));
    expect(at(7, 10)).toEqual(over(rgbOf(CLASS_PALETTE[1]), GREY, 128));
    expect(at(8, 10)).toEqual(GREY);
  });

  it('refuses a map of another size than the image', () => {
    expect(() => paintClassMap(canvas(30, 20).c, new Uint8Array(100), 10, 10)).toThrow('class map is 10x10, the image 30x20');
  });
});

describe('drawObjects and drawClassMap', () => {
  it('decode the image, draw, and encode a JPEG of the same size', async () => {
    const png = await sharp({ create: { width: 320, height: 200, channels: 3, background: { r: 100, g: 100, b: 100 } } })
      .png()
      .toBuffer();
    const map = new Uint8Array(320 * 200).fill(2, 0, 320 * 100);
    for (const jpeg of [await drawObjects(png, [object({ bbox: [10, 50, 100, 150] })]), await drawClassMap(png, map, 320, 200)]) {
      const { data, info } = await sharp(jpeg).raw().toBuffer({ resolveWithObject: true });
      expect([info.format, info.width, info.height]).toEqual(['raw', 320, 200]);
      const far = Array.from(data.subarray((180 * 320 + 300) * 3, (180 * 320 + 300) * 3 + 3));
      expect(far.every((v) => Math.abs(v - 100) <= 3)).toBe(true);
    }
  });
});

describe('a window of a wider image (rows a stride apart)', () => {
  // Small: libjpeg-turbo encodes it from the window; large (over ON_THREAD_MAX_PIXELS): sharp, from a copy.
  it.each([
    [40, 30, 60, 50, 7, 5],
    [1100, 1000, 1200, 1010, 60, 4],
  ])('is drawn and encoded as its own copy is, leaving the rest alone: %ix%i in %ix%i', async (w, h, W, H, left, top) => {
    const image = Buffer.alloc(W * H * 3);
    for (let i = 0; i < image.length; i++) image[i] = (i * 7919) % 251;
    const copy = Buffer.alloc(w * h * 3);
    for (let y = 0; y < h; y++) image.copy(copy, y * w * 3, ((top + y) * W + left) * 3, ((top + y) * W + left + w) * 3);
    const window = (data: Buffer) => ({ data: data.subarray((top * W + left) * 3, ((top + h - 1) * W + left + w) * 3), width: w, height: h, stride: W * 3 });
    const mask = new Uint8Array(w * h);
    for (let y = 0; y < h; y++) mask.fill(1, y * w + 3, y * w + 9); // columns 3-8
    const detections = [
      object({ bbox: [2, 3, w - 5, h - 4], mask: { size: [h, w], counts: rleToString(encodeMask(mask, h, w)) } }),
      object({ class_id: 5, bbox: [w / 2, h / 3, w - 1, h - 1], confidence: 0.5 }),
    ];
    const map = new Uint8Array(w * h).map((_, i) => i % 3);
    for (const draw of [
      (image: Buffer | { data: Buffer; width: number; height: number; stride: number }) =>
        drawObjects(image instanceof Buffer ? { data: image, width: w, height: h } : image, detections),
      (image: Buffer | { data: Buffer; width: number; height: number; stride: number }) =>
        drawClassMap(image instanceof Buffer ? { data: image, width: w, height: h } : image, map, w, h),
    ]) {
      const wide = Buffer.from(image);
      const expected = await draw(Buffer.from(copy));
      expect(Buffer.compare(await draw(window(wide)), expected)).toBe(0);
      const changed = (x: number, y: number) => wide[(y * W + x) * 3] !== image[(y * W + x) * 3];
      let outside = 0;
      let inside = 0;
      for (let y = 0; y < H; y++)
        for (let x = 0; x < W; x++) {
          if (x >= left && x < left + w && y >= top && y < top + h) inside += changed(x, y) ? 1 : 0;
          else outside += changed(x, y) ? 1 : 0;
        }
      expect({ outside, drewInside: inside > 0 }).toEqual({ outside: 0, drewInside: true });
    }
  });
});

describe('RgbCanvas', () => {
  it('clips shapes at the edges and rounds their corners to whole pixels', () => {
    const c = new RgbCanvas(Buffer.alloc(4 * 3 * 3), 4, 3);
    c.fillRect(-5, 0.6, 2.4, 99, [9, 8, 7]);
    const set = (x: number, y: number) => c.data[(y * 4 + x) * 3] === 9;
    expect([0, 1, 2].map((y) => [0, 1, 2, 3].map((x) => (set(x, y) ? 1 : 0)))).toEqual([
      [0, 0, 0, 0],
      [1, 1, 0, 0],
      [1, 1, 0, 0],
    ]);
  });

  it('refuses pixels that are not width x height RGB', () => {
    expect(() => new RgbCanvas(Buffer.alloc(10), 2, 2)).toThrow('expected 2x2 RGB pixels, got 10 bytes');
    // A window: its last row needs only its own pixels, not the stride's.
    expect(new RgbCanvas(Buffer.alloc(12 + 6), 2, 2, 12).stride).toBe(12);
    expect(() => new RgbCanvas(Buffer.alloc(12 + 5), 2, 2, 12)).toThrow('expected 2x2 RGB pixels in rows 12 bytes apart, got 17 bytes');
    expect(() => new RgbCanvas(Buffer.alloc(100), 2, 2, 5)).toThrow('in rows 5 bytes apart');
  });
});

describe('GlyphCache', () => {
  it('renders a character once per size and gives every glyph the font advance', async () => {
    const cache = new GlyphCache();
    const [a1, b] = await cache.glyphs('ab', 20);
    const [a2] = await cache.glyphs('a', 20);
    expect(a2).toBe(a1);
    expect(a1!.advance).toBe(b!.advance);
    expect(a1!.alpha.some((v) => v > 200)).toBe(true);
    const [space] = await cache.glyphs(' ', 20);
    expect(space!.alpha.every((v) => v === 0)).toBe(true);
    expect(space!.advance).toBe(a1!.advance);
    const [a3] = await cache.glyphs('a', 40);
    expect(a3!.advance).toBe(2 * a1!.advance);
  });

  it('draws characters it cannot print as "?"', async () => {
    const cache = new GlyphCache();
    const [control, question] = await cache.glyphs('\u0007?', 20);
    expect(control).toBe(question);
  });
});
