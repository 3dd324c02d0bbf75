import fc from 'fast-check';
import sharp from 'sharp';
import { letterbox, letterboxGeometry, pictureSource, scaleBoxes } from '../../src/runner/detection/letterbox.ts';
import { drawObjects } from '../../src/runner/visualize/draw.ts';
import { decodeEndToEnd, decodeYolo, nms, PREDICT_DEFAULTS } from '../../src/runner/detection/yolo-postprocess.ts';

describe('Ultralytics letterbox', () => {
  it.each([
    // [w, h, input] -> resized and padding, worked out with Ultralytics' formulas
    [640, 480, 640, { width: 640, height: 480, top: 80, bottom: 80, left: 0, right: 0 }],
    // r = 1.28: 333 * 1.28 = 426.24 -> 426; dh = 107 -> round(106.9), round(107.1)
    [500, 333, 640, { width: 640, height: 426, top: 107, bottom: 107, left: 0, right: 0 }],
    // r = 0.64: h = round(32.64) = 33; dh = 15.5 -> top round(15.4) = 15, bottom round(15.6) = 16
    [100, 51, 64, { width: 64, height: 33, top: 15, bottom: 16, left: 0, right: 0 }],
    // r = 0.5: h = Python round(2.5) = 2 (half to even, where Math.round gives 3)
    [10, 5, 5, { width: 5, height: 2, top: 1, bottom: 2, left: 0, right: 0 }],
  ])('%i x %i into %i', (w, h, size, expected) => {
    expect(letterboxGeometry(w, h, [size, size])).toMatchObject(expected);
  });

  it('places the resized image between grey (114) bars', async () => {
    const red = await sharp({ create: { width: 40, height: 20, channels: 3, background: { r: 255, g: 0, b: 0 } } })
      .png()
      .toBuffer();
    const { pixels, geometry } = await letterbox(red, [32, 32]);
    expect(geometry).toMatchObject({ width: 32, height: 16, top: 8, bottom: 8 });
    const px = (row: number, col: number) => [...pixels.subarray((row * 32 + col) * 3, (row * 32 + col) * 3 + 3)];
    expect(px(0, 0)).toEqual([114, 114, 114]);
    expect(px(7, 16)).toEqual([114, 114, 114]);
    expect(px(8, 16)).toEqual([255, 0, 0]);
    expect(px(23, 16)).toEqual([255, 0, 0]);
    expect(px(24, 16)).toEqual([114, 114, 114]);
  });

  /** A JPEG of noise-like pixels: every pixel differs from its neighbours, so any shift shows. */
  const jpegOf = (width: number, height: number) => {
    const raw = Buffer.alloc(width * height * 3);
    for (let i = 0; i < raw.length; i++) raw[i] = (i * 2654435761) >>> 24;
    return sharp(raw, { raw: { width, height, channels: 3 } })
      .jpeg()
      .toBuffer();
  };

  it.each([
    [60, 40, [60, 60]], // bars above and below, no resampling
    [40, 60, [60, 60]], // bars left and right
    [50, 30, [40, 48]], // resampled, bars on both axes
  ] as Array<[number, number, [number, number]]>)('a %i x %i image into %j equals libvips extend of its resized pixels', async (w, h, size) => {
    // The reference: libvips' own extend with the grey background, what the letterbox did before.
    const jpeg = await jpegOf(w, h);
    const g = letterboxGeometry(w, h, size);
    let reference = sharp(jpeg).removeAlpha().toColourspace('srgb');
    if (g.width !== w || g.height !== h) reference = reference.resize({ width: g.width, height: g.height, fit: 'fill', kernel: 'linear' });
    const expected = await reference
      .extend({ top: g.top, bottom: g.bottom, left: g.left, right: g.right, background: { r: 114, g: 114, b: 114 } })
      .raw()
      .toBuffer();
    const { pixels } = await letterbox(jpeg, size);
    expect(pixels.length).toBe(size[0] * size[1] * 3);
    expect(Buffer.compare(pixels, expected)).toBe(0);
  });

  it("gives the image's own decoded pixels back where it was not resampled, in place, and its JPEG where it was", async () => {
    for (const [w, h] of [
      [60, 40],
      [40, 60],
    ]) {
      const jpeg = await jpegOf(w!, h!);
      const { pixels, geometry } = await letterbox(jpeg, [60, 60]);
      const kept = pictureSource(jpeg, pixels, geometry, { width: w!, height: h! });
      const decoded = await sharp(jpeg).raw().toBuffer();
      if (kept instanceof Uint8Array) throw new Error('expected decoded pixels, got the JPEG');
      // A window of the letterboxed buffer itself, read row by row.
      expect(kept.data.buffer).toBe(pixels.buffer);
      const rows = Buffer.concat(Array.from({ length: kept.height }, (_, y) => kept.data.subarray(y * kept.stride, y * kept.stride + kept.width * 3)));
      expect({ width: kept.width, height: kept.height, stride: kept.stride, same: Buffer.compare(rows, decoded) === 0 }).toEqual({
        width: w,
        height: h,
        stride: 60 * 3,
        same: true,
      });
      // A picture drawn on them is the picture drawn from the JPEG, and the grey bars around them stay as they were.
      const detections = [{ class_id: 1, class_name: 'b', category_id: 1, confidence: 0.9, bbox: [2, 3, 30, 20] as [number, number, number, number] }];
      const before = Buffer.from(pixels);
      expect(Buffer.compare(await drawObjects(kept, detections), await drawObjects(jpeg, detections))).toBe(0);
      const changedOutside: number[] = [];
      for (let i = 0; i < pixels.length; i += 3) {
        const x = (i / 3) % 60;
        const y = Math.floor(i / 3 / 60);
        const inside = x >= geometry.left && x < geometry.left + w! && y >= geometry.top && y < geometry.top + h!;
        if (!inside && Buffer.compare(pixels.subarray(i, i + 3), before.subarray(i, i + 3)) !== 0) changedOutside.push(i / 3);
      }
      expect(changedOutside).toEqual([]);
      expect(Buffer.compare(pixels, before)).not.toBe(0);
    }
    const jpeg = await jpegOf(50, 30);
    const { pixels, geometry } = await letterbox(jpeg, [40, 48]);
    expect(pictureSource(jpeg, pixels, geometry, { width: 50, height: 30 })).toBe(jpeg);
  });

  it('maps boxes back to original pixels (scale_boxes), clipped to the image', () => {
    // 500x333 into 640: gain 1.28, pad x round(-0.1) = 0, pad y round(106.78) = 107.
    // Per-axis gains from the rounded size: x 640 / 500 = 1.28, y 426 / 333.
    const original = { width: 500, height: 333 };
    const g = letterboxGeometry(500, 333, [640, 640]);
    expect([g.gainX, g.gainY]).toEqual([640 / 500, 426 / 333]);
    const forward = (b: number[]) => [b[0]! * g.gainX, b[1]! * g.gainY + 107, b[2]! * g.gainX, b[3]! * g.gainY + 107];
    const [back] = scaleBoxes([forward([10, 20, 110, 220])], g, original);
    // float32 arithmetic, as Ultralytics' tensors.
    back!.forEach((v, i) => expect(v).toBeCloseTo([10, 20, 110, 220][i]!, 4));
    expect(scaleBoxes([[-5, 0, 700, 700]], g, original)[0]).toEqual([0, 0, 500, 333]);
  });
});

describe('NMS as Ultralytics runs it', () => {
  it('suppresses only overlaps strictly above the threshold, best score first', () => {
    const boxes = [
      [0, 0, 10, 10], // best
      [0, 0, 10, 8], // IoU 0.8 with the best: suppressed
      [0, 0, 10, 7], // IoU exactly 0.7 with the best: kept (not > 0.7)
      [50, 50, 60, 60],
    ];
    expect(nms(Float32Array.from(boxes.flat()), [0.95, 0.9, 0.5, 0.3], 0.7)).toEqual([0, 2, 3]);
  });

  /** Channel-major [4 + nc, N], as the ONNX export lays it out. */
  const tensor = (anchors: Array<[number, number, number, number, ...number[]]>) => {
    const n = anchors.length;
    const channels = anchors[0]!.length;
    const t = new Float32Array(channels * n);
    anchors.forEach((a, i) => a.forEach((v, c) => (t[c * n + i] = v)));
    return t;
  };

  it('decodes cx,cy,w,h with the best class, never suppresses across classes, and caps max_det', () => {
    const out = tensor([
      [50, 50, 20, 20, 0.9, 0.1], // class 0
      [51, 50, 20, 20, 0.1, 0.8], // same place, class 1: kept
      [50, 51, 20, 20, 0.85, 0.2], // class 0 duplicate: suppressed
      [200, 200, 10, 10, 0.25, 0.0], // exactly at conf 0.25: dropped (> conf)
    ]);
    const dets = decodeYolo(out, 2, 4, PREDICT_DEFAULTS);
    expect(dets.map((d) => [d.classId, Number(d.score.toFixed(2))])).toEqual([
      [0, 0.9],
      [1, 0.8],
    ]);
    expect(dets[0]!.box).toEqual([40, 40, 60, 60]);
    expect(decodeYolo(out, 2, 4, { ...PREDICT_DEFAULTS, maxDet: 1 })).toHaveLength(1);
  });

  it('takes every anchor with any one class above conf, whichever class and however many classes', () => {
    // One class at most above conf an anchor, anywhere among up to 24 classes (the scan reads the
    // class rows eight at a time, the rest one by one); others below it or exactly at it. Nothing
    // is suppressed (IoU 1 is not above 1), so the detections are the candidates themselves.
    const conf = Math.fround(0.25);
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 24 }),
        fc.array(fc.record({ hit: fc.nat(), score: fc.double({ min: 0.26, max: 1, noNaN: true }), low: fc.constantFrom(0, 0.1, conf) }), {
          minLength: 1,
          maxLength: 30,
        }),
        (nc, anchors) => {
          const rows = anchors.map(({ hit, score, low }) => {
            const above = hit % (nc + 1); // nc: no class above conf
            return [10, 10, 4, 4, ...Array.from({ length: nc }, (_, c) => (c === above ? score : low))] as [number, number, number, number, ...number[]];
          });
          const got = decodeYolo(tensor(rows), nc, rows.length, { conf, iou: 1, maxDet: 300 }).map((d) => [d.anchor, d.classId]);
          const want = anchors.flatMap(({ hit }, a) => (hit % (nc + 1) < nc ? [[a, hit % (nc + 1)]] : []));
          expect(got.sort((x, y) => x[0]! - y[0]!)).toEqual(want);
        },
      ),
      { numRuns: Number(process.env.KINFER_FUZZ_RUNS ?? 300) },
    );
  });

  it('filters end-to-end outputs without suppressing them', () => {
    const rows = new Float32Array([0, 0, 10, 10, 0.9, 2, 0, 0, 10, 10, 0.8, 2, 5, 5, 9, 9, 0.1, 1]);
    expect(decodeEndToEnd(rows, 3, { conf: 0.25, maxDet: 300 }).map((d) => d.classId)).toEqual([2, 2]);
  });
});
