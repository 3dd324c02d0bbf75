// What a job reads: an ImageFolder split for test runs (`{root}/{split}/{class_name}/...`), or the
// images named by an inference job's input config. Listings are streamed twice (count, then read)
// rather than held in memory.
import { canonicalStorageUri, joinStorageUri, matchDatasetClasses, type InputConfig, type ModelMetadata } from '../../contract/index.ts';
import type { CocoAnnotation, CocoImage } from '../datasets/coco-annotations.ts';
import type { ObjectStore } from '../io/object-store.ts';

/** torchvision's IMG_EXTENSIONS. */
const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif', '.tiff', '.webp']);

export function isImagePath(uri: string): boolean {
  const dot = uri.lastIndexOf('.');
  return dot !== -1 && IMAGE_EXTENSIONS.has(uri.slice(dot).toLowerCase());
}

export interface Sample {
  index: number;
  uri: string;
  /** Path relative to the dataset split or input folder; the image's own URI for listed images. */
  name: string;
  /** The dataset's image id (COCO); the index otherwise. */
  imageId?: number;
  /** Classification test runs. */
  trueClassId?: number;
  /** Object test runs: where this image's labelled objects are. */
  objects?: ObjectLabels;
  /** Semantic segmentation test runs: the ground-truth class-id PNG. */
  maskUri?: string;
}

export type ObjectLabels =
  | { kind: 'coco'; image: CocoImage; annotations: CocoAnnotation[] }
  /** A YOLO label file; null when the image has none (no objects). */
  | { kind: 'yolo'; labelUri: string | null };

export class DatasetError extends Error {
  readonly code = 'DATASET_INVALID';
  constructor(message: string) {
    super(message);
    this.name = 'DatasetError';
  }
}

/** A finite, re-iterable stream of samples whose length is known up front. */
export interface SampleSource {
  total: number;
  /** Class names in class-id order (the model's when it has them). */
  classNames: string[];
  /**
   * The dataset's category id of each class (COCO); absent when ids are the class ids. Classes
   * the dataset does not know get ids above its own, so their detections are never scored.
   */
  categoryIds?: number[];
  /** Categories the evaluation covers (COCO: every category of the file). */
  evaluatedCategoryIds?: number[];
  /** Classification: the class ids the dataset has folders for (a model may know more). */
  datasetClassIds?: number[];
  samples(): AsyncGenerator<Sample>;
}

export function relative(root: string, uri: string): string {
  return uri.slice(root.length).replace(/^\/+/, '');
}

/** The images under a folder or prefix, in listing order, with their paths relative to it. */
export async function* imagesUnder(store: ObjectStore, root: string): AsyncGenerator<{ uri: string; rel: string }> {
  for await (const uri of store.list(root)) if (isImagePath(uri)) yield { uri, rel: relative(root, uri) };
}

/**
 * The samples of a labelled `{split}/images/**` folder, named `images/<rel>`, with what `labels`
 * finds for each image's stem (its path without the extension: where a same-named label lives).
 */
export async function* stemLabelledSamples(store: ObjectStore, imagesRoot: string, labels: (stem: string) => Partial<Sample>): AsyncGenerator<Sample> {
  let index = 0;
  for await (const { uri, rel } of imagesUnder(store, imagesRoot)) {
    const i = index++;
    yield { index: i, uri, name: `images/${rel}`, imageId: i, ...labels(rel.replace(/\.[^./]+$/, '')) };
  }
}

export async function countImages(store: ObjectStore, root: string): Promise<number> {
  let total = 0;
  for await (const _ of imagesUnder(store, root)) total++;
  return total;
}

export async function imageFolderSource(store: ObjectStore, datasetPath: string, split: string, model: ModelMetadata): Promise<SampleSource> {
  const root = joinStorageUri(canonicalStorageUri(datasetPath), split);
  const folders = new Map<string, number>();
  let total = 0;
  for await (const uri of store.list(root)) {
    const rel = relative(root, uri);
    const slash = rel.indexOf('/');
    if (slash === -1 || !isImagePath(uri)) continue;
    const folder = rel.slice(0, slash);
    folders.set(folder, (folders.get(folder) ?? 0) + 1);
    total++;
  }
  if (total === 0) {
    throw new DatasetError(`no images found under ${root}/<class_name>/ (expected ImageFolder layout: {dataset}/{split}/{class_name}/*.jpg)`);
  }
  // Without class names in the model, classes are the sorted folder names (torchvision ImageFolder).
  const { classNames, problems } = matchDatasetClasses(model, { classes: [...folders.keys()], ordered: false, what: 'class folders' });
  if (problems.length > 0) throw new DatasetError(problems.join('; '));
  const classIds = new Map(classNames.map((n, i) => [n, i]));
  return {
    total,
    classNames,
    datasetClassIds: [...folders.keys()].map((f) => classIds.get(f)!).sort((a, b) => a - b),
    async *samples() {
      let index = 0;
      for await (const uri of store.list(root)) {
        const rel = relative(root, uri);
        const slash = rel.indexOf('/');
        if (slash === -1 || !isImagePath(uri)) continue;
        yield { index: index++, uri, name: rel, trueClassId: classIds.get(rel.slice(0, slash))! };
      }
    },
  };
}

export async function inferenceInputSource(store: ObjectStore, input: InputConfig, classNames: string[]): Promise<SampleSource> {
  if ('image_path' in input || 'image_paths' in input) {
    const uris = 'image_path' in input ? [input.image_path] : input.image_paths;
    return {
      total: uris.length,
      classNames,
      async *samples() {
        for (const [index, uri] of uris.entries()) yield { index, uri, name: uri };
      },
    };
  }
  const root = canonicalStorageUri(input.dataset_path);
  const total = await countImages(store, root);
  if (total === 0) throw new DatasetError(`no images found under ${root}`);
  return {
    total,
    classNames,
    async *samples() {
      let index = 0;
      for await (const { uri, rel } of imagesUnder(store, root)) yield { index: index++, uri, name: rel };
    },
  };
}
