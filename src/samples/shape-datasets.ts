// Labelled datasets for the shape models (shape-models.ts), each with planted cases whose effect on
// the metrics is known: a ground-truth box off by a pixel or two, an empty image, a crowd region,
// an object labelled but not drawn (missed), one drawn but not labelled (false positive), a
// category nobody labelled, a corrupt file. Layouts: detection and pose as COCO
// (`{split}/annotations.json`), instance segmentation as YOLO (`{split}/images`, `{split}/labels`),
// semantic segmentation as PNG masks (`{split}/images`, `{split}/masks`).
import sharp from 'sharp';
import { rng } from './images.ts';
import { POSE_TEMPLATE, SHAPE_CLASSES } from './shape-models.ts';

export interface ShapeObject {
  classId: number;
  /** [x, y, w, h], whole pixels. */
  box: [number, number, number, number];
}

export interface ShapeImageTruth {
  /** Relative to the split folder. */
  file: string;
  width: number;
  height: number;
  /** What is in the picture (the model's right answer); empty for the corrupt file. */
  drawn: ShapeObject[];
  corrupt: boolean;
}

export interface ShapeDataset {
  /** Relative to the dataset root. */
  files: Array<{ path: string; bytes: Buffer }>;
  images: ShapeImageTruth[];
}

export type ShapeTask = 'detect' | 'segment' | 'pose' | 'semantic';

const BACKGROUND = 20;

/** Non-overlapping rectangles (a gap of 3 px), at most one per class. */
function placeObjects(r: () => number, width: number, height: number, classes: number[]): ShapeObject[] {
  const placed: ShapeObject[] = [];
  for (const classId of classes) {
    for (let attempt = 0; attempt < 50; attempt++) {
      const w = 8 + Math.floor(r() * (width / 2 - 8));
      const h = 8 + Math.floor(r() * (height / 2 - 8));
      const x = 1 + Math.floor(r() * (width - w - 2));
      const y = 1 + Math.floor(r() * (height - h - 2));
      const clear = placed.every(({ box: [bx, by, bw, bh] }) => x + w + 3 <= bx || bx + bw + 3 <= x || y + h + 3 <= by || by + bh + 3 <= y);
      if (clear) {
        placed.push({ classId, box: [x, y, w, h] });
        break;
      }
    }
  }
  return placed;
}

export async function renderShapes(width: number, height: number, objects: ShapeObject[], format: 'png' | 'jpeg' = 'png'): Promise<Buffer> {
  const pixels = Buffer.alloc(width * height * 3, BACKGROUND);
  for (const {
    classId,
    box: [x0, y0, w, h],
  } of objects) {
    const rgb = SHAPE_CLASSES[classId]!.rgb;
    for (let y = y0; y < y0 + h; y++) for (let x = x0; x < x0 + w; x++) pixels.set(rgb, (y * width + x) * 3);
  }
  const img = sharp(pixels, { raw: { width, height, channels: 3 } });
  return format === 'png' ? img.png().toBuffer() : img.jpeg({ quality: 95 }).toBuffer();
}

const poly = ([x, y, w, h]: number[]) => [x!, y!, x! + w!, y!, x! + w!, y! + h!, x!, y! + h!];

export async function buildShapeDataset(task: ShapeTask, opts: { split?: string; seed?: number; images?: number } = {}): Promise<ShapeDataset> {
  const split = opts.split ?? 'val';
  const r = rng(opts.seed ?? 11);
  const classCount = task === 'pose' ? 1 : task === 'semantic' ? 2 : 3; // semantic: blue never appears
  const images: ShapeImageTruth[] = [];
  const files: ShapeDataset['files'] = [];
  /** Labelled objects per image, before planting faults: the drawn ones, some off by a pixel or two. */
  const labels = new Map<string, Array<ShapeObject & { crowd?: boolean }>>();
  const count = opts.images ?? 12;
  const ext = (i: number) => (i === 3 ? 'jpg' : 'png');
  for (let i = 0; i < count; i++) {
    const width = 48 + Math.floor(r() * 80);
    const height = 48 + Math.floor(r() * 80);
    const classes = [...Array(classCount).keys()].filter(() => r() < 0.75);
    const drawn = i === 0 ? [] : placeObjects(r, width, height, classes.length ? classes : [0]); // image 0: empty
    const file = `${task === 'semantic' || task === 'segment' ? 'images/' : ''}img_${String(i).padStart(3, '0')}.${ext(i)}`;
    images.push({ file, width, height, drawn, corrupt: false });
    labels.set(
      file,
      drawn.map((o) => ({ ...o, box: [...o.box] as ShapeObject['box'] })),
    );
  }
  // Planted faults on the labels (the pictures stay right).
  const [, second, third, fourth, fifth] = images;
  const jitter = (o: ShapeObject) =>
    (o.box = [o.box[0] + (r() < 0.5 ? 1 : -1), o.box[1] + Math.floor(r() * 3) - 1, o.box[2] + Math.floor(r() * 5) - 2, o.box[3] + 1]);
  for (const [n, img] of images.entries()) if (n % 2 === 1) labels.get(img.file)!.forEach(jitter);
  if (task !== 'semantic') {
    labels.get(second!.file)!.push({ classId: 0, box: [2, 2, 10, 10] }); // labelled, not drawn: a miss
    labels.get(third!.file)!.splice(0, 1); // drawn, not labelled: a false positive
    const crowd = labels.get(fourth!.file)![0];
    if (crowd && task !== 'segment') crowd.crowd = true; // YOLO labels have no crowds
  } else {
    const wrong = labels.get(fifth!.file)![0];
    if (wrong) wrong.classId = 1 - wrong.classId; // the other class
  }
  for (const img of images)
    files.push({ path: `${split}/${img.file}`, bytes: await renderShapes(img.width, img.height, img.drawn, img.file.endsWith('.jpg') ? 'jpeg' : 'png') });
  // A corrupt file, labelled with one object.
  const corrupt = `${task === 'semantic' || task === 'segment' ? 'images/' : ''}img_corrupt.png`;
  images.push({ file: corrupt, width: 64, height: 48, drawn: [], corrupt: true });
  labels.set(corrupt, [{ classId: 0, box: [5, 5, 20, 20] }]);
  files.push({ path: `${split}/${corrupt}`, bytes: (await renderShapes(64, 48, [])).subarray(0, 40) });

  if (task === 'detect' || task === 'pose') {
    // COCO; categories with gaps in their ids and one nobody labelled.
    const categories =
      task === 'pose'
        ? [{ id: 1, name: 'person', keypoints: Array.from({ length: 17 }, (_, k) => `kp${k}`) }]
        : [...SHAPE_CLASSES.map((c, i) => ({ id: 1 + 2 * i, name: c.name })), { id: 7, name: 'yellow' }];
    const annotations: object[] = [];
    images.forEach((img, index) => {
      for (const o of labels.get(img.file)!) {
        const [x, y, w, h] = o.box;
        const ann: Record<string, unknown> = {
          id: annotations.length + 1,
          image_id: 100 + index,
          category_id: task === 'pose' ? 1 : 1 + 2 * o.classId,
          bbox: [x, y, w, h],
          area: w * h,
          iscrowd: o.crowd ? 1 : 0,
          segmentation: [poly(o.box)],
        };
        if (task === 'pose') {
          const kps: number[] = [];
          POSE_TEMPLATE.forEach(([fx, fy], k) => {
            const labelled = (k + index) % 5 !== 0; // some keypoints not labelled
            const dx = Math.floor(r() * 5) - 2;
            const dy = Math.floor(r() * 5) - 2;
            kps.push(labelled ? x + fx * w + dx : 0, labelled ? y + fy * h + dy : 0, labelled ? 2 : 0);
          });
          ann.keypoints = kps;
          ann.num_keypoints = kps.filter((_, i) => i % 3 === 2 && kps[i]! > 0).length;
        }
        annotations.push(ann);
      }
    });
    const coco = {
      info: { description: `kinfer shapes (${task})` },
      images: images.map((img, index) => ({ id: 100 + index, file_name: img.file, width: img.width, height: img.height })),
      annotations,
      categories,
    };
    files.push({ path: `${split}/annotations.json`, bytes: Buffer.from(JSON.stringify(coco, null, 1)) });
  } else if (task === 'segment') {
    for (const img of images) {
      const lines = labels
        .get(img.file)!
        .map((o) => [o.classId, ...poly(o.box).map((v, i) => (i % 2 === 0 ? v / img.width : v / img.height).toFixed(6))].join(' '));
      if (lines.length > 0)
        files.push({ path: `${split}/labels/${img.file.slice('images/'.length).replace(/\.\w+$/, '.txt')}`, bytes: Buffer.from(`${lines.join('\n')}\n`) });
    }
  } else {
    for (const [n, img] of images.entries()) {
      const mask = Buffer.alloc(img.width * img.height, 0);
      for (const o of labels.get(img.file)!) {
        const [x0, y0, w, h] = o.box;
        for (let y = Math.max(0, y0); y < Math.min(img.height, y0 + h); y++) {
          for (let x = Math.max(0, x0); x < Math.min(img.width, x0 + w); x++) {
            // Every third image marks its objects' outer pixels "not scored", as VOC does.
            const border = n % 3 === 2 && (x === x0 || y === y0 || x === x0 + w - 1 || y === y0 + h - 1);
            mask[y * img.width + x] = border ? 255 : o.classId + 1;
          }
        }
      }
      const png = await sharp(mask, { raw: { width: img.width, height: img.height, channels: 1 } })
        .toColourspace('b-w')
        .png()
        .toBuffer();
      files.push({ path: `${split}/masks/${img.file.slice('images/'.length).replace(/\.\w+$/, '.png')}`, bytes: png });
    }
  }
  return { files, images };
}
