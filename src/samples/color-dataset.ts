// An ImageFolder dataset for the colour classifier, with planted faults whose effect is known:
// mislabeled images (a colour filed under another class) and corrupt files (not an image).
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { COLOR_CLASSES, type Rgb } from './color-classifier.ts';
import { colorImage, rng } from './images.ts';

export interface DatasetFile {
  /** Relative to the dataset root, e.g. `test/red/red_0003.png`. */
  path: string;
  bytes: Buffer;
  /** The folder it is filed under. */
  label: string;
  /** The colour actually drawn, or null for a corrupt file. */
  drawn: string | null;
}

export interface ColorDatasetOptions {
  split?: string;
  perClass?: number;
  /** [drawn colour, filed-under label] pairs, each adds one image. */
  mislabeled?: Array<[string, string]>;
  /** Labels under which to add a corrupt `.jpg` (truncated JPEG bytes). */
  corrupt?: string[];
  seed?: number;
  classes?: ReadonlyArray<{ name: string; rgb: Rgb }>;
}

export async function buildColorDataset(opts: ColorDatasetOptions = {}): Promise<DatasetFile[]> {
  const split = opts.split ?? 'test';
  const classes = opts.classes ?? COLOR_CLASSES;
  const rgbOf = new Map(classes.map((c) => [c.name, c.rgb]));
  const random = rng(opts.seed ?? 7);
  const files: DatasetFile[] = [];
  const draw = async (colour: string, label: string, name: string, seed: number) => {
    const format = random() < 0.5 ? 'png' : 'jpeg';
    const width = 24 + Math.floor(random() * 64);
    const height = 24 + Math.floor(random() * 64);
    const orientation = random() < 0.2 ? 6 : undefined;
    const bytes = await colorImage({ rgb: rgbOf.get(colour)!, width, height, format, seed, ...(orientation ? { orientation } : {}) });
    files.push({ path: `${split}/${label}/${name}.${format === 'png' ? 'png' : 'jpg'}`, bytes, label, drawn: colour });
  };
  let seed = opts.seed ?? 7;
  for (const { name } of classes) {
    for (let i = 0; i < (opts.perClass ?? 4); i++) await draw(name, name, `${name}_${String(i).padStart(4, '0')}`, seed++);
  }
  for (const [i, [drawn, label]] of (opts.mislabeled ?? []).entries()) await draw(drawn, label, `mislabeled_${i}`, seed++);
  for (const [i, label] of (opts.corrupt ?? []).entries()) {
    const jpeg = await colorImage({ rgb: [128, 128, 128], width: 64, height: 64, format: 'jpeg', seed: seed++ });
    files.push({ path: `${split}/${label}/corrupt_${i}.jpg`, bytes: jpeg.subarray(0, Math.floor(jpeg.length / 3)), label, drawn: null });
  }
  return files;
}

export async function writeFiles(root: string, files: ReadonlyArray<{ path: string; bytes: Uint8Array }>): Promise<void> {
  for (const file of files) {
    const target = join(root, file.path);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, file.bytes);
  }
}
