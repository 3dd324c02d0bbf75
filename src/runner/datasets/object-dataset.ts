// Test-run datasets of the object tasks (detection, instance segmentation, pose), in the two
// layouts users have: COCO, `{split}/annotations.json` with image `file_name`s relative to
// `{split}/` or `{split}/images/`; and YOLO, `{split}/images/**` with `{split}/labels/**.txt` of
// the same stem (an image without a label file has no objects).
import { canonicalStorageUri, cocoDatasetClasses, joinStorageUri, matchDatasetClasses, type ModelMetadata } from '../../contract/index.ts';
import { ObjectNotFoundError, type ObjectStore } from '../io/object-store.ts';
import { countImages, DatasetError, relative, stemLabelledSamples, type SampleSource } from '../pipeline/inputs.ts';
import { parseCocoAnnotationFile, type CocoAnnotation } from './coco-annotations.ts';

export const COCO_ANNOTATIONS_FILE = 'annotations.json';

async function readOptional(store: ObjectStore, uri: string): Promise<Buffer | undefined> {
  try {
    return await store.read(uri);
  } catch (err) {
    if (err instanceof ObjectNotFoundError) return undefined;
    throw err;
  }
}

export async function objectDatasetSource(store: ObjectStore, datasetPath: string, split: string, model: ModelMetadata): Promise<SampleSource> {
  const root = joinStorageUri(canonicalStorageUri(datasetPath), split);
  const annotationsUri = joinStorageUri(root, COCO_ANNOTATIONS_FILE);
  const annotations = await readOptional(store, annotationsUri);
  if (annotations) return cocoSource(store, root, parseCocoAnnotationFile(annotations.toString('utf8'), annotationsUri), model);
  return yoloSource(store, root, model.classNames);
}

async function cocoSource(store: ObjectStore, root: string, file: ReturnType<typeof parseCocoAnnotationFile>, model: ModelMetadata): Promise<SampleSource> {
  const categories = [...file.categories].sort((a, b) => a.id - b.id);
  // Classes are the model's; the dataset's categories are matched to them by name (in id order
  // when the model names none, as Ultralytics' COCO models are).
  const { classNames, problems } = matchDatasetClasses(model, cocoDatasetClasses(file));
  if (problems.length > 0) throw new DatasetError(problems.join('; '));
  const byName = new Map(categories.map((c) => [c.name, c.id]));
  const maxId = Math.max(...categories.map((c) => c.id));
  const categoryIds = classNames.map((name, classId) => byName.get(name) ?? maxId + 1 + classId);
  const known = new Set(categories.map((c) => c.id));
  const stray = file.annotations.find((a) => !known.has(a.category_id));
  if (stray) throw new DatasetError(`annotation ${stray.id} has category_id ${stray.category_id}, which is not in the file's categories`);

  const listed = new Set<string>();
  for await (const uri of store.list(root)) listed.add(relative(root, uri));
  const byImage = Map.groupBy(file.annotations, (a: CocoAnnotation) => a.image_id);
  const images = file.images;
  if (images.length === 0) throw new DatasetError(`${joinStorageUri(root, COCO_ANNOTATIONS_FILE)} lists no images`);
  return {
    total: images.length,
    classNames,
    categoryIds,
    evaluatedCategoryIds: categories.map((c) => c.id),
    async *samples() {
      for (const [index, image] of images.entries()) {
        // A listed image missing from storage still gets a sample: it ends as a per-image error.
        const name = listed.has(image.file_name) || !listed.has(`images/${image.file_name}`) ? image.file_name : `images/${image.file_name}`;
        yield { index, uri: joinStorageUri(root, name), name, imageId: image.id, objects: { kind: 'coco', image, annotations: byImage.get(image.id) ?? [] } };
      }
    },
  };
}

async function yoloSource(store: ObjectStore, root: string, modelClassNames: string[]): Promise<SampleSource> {
  const imagesRoot = joinStorageUri(root, 'images');
  const labelsRoot = joinStorageUri(root, 'labels');
  const labels = new Set<string>();
  for await (const uri of store.list(labelsRoot)) if (uri.endsWith('.txt')) labels.add(relative(labelsRoot, uri));
  const total = await countImages(store, imagesRoot);
  if (total === 0) {
    throw new DatasetError(
      `no dataset found under ${root}: expected COCO (${root}/${COCO_ANNOTATIONS_FILE}) or YOLO (${imagesRoot}/*.jpg with ${labelsRoot}/*.txt)`,
    );
  }
  if (modelClassNames.length === 0) {
    throw new DatasetError('a YOLO dataset names classes by id only: the model must carry its class names or count (metadata_props names)');
  }
  return {
    total,
    classNames: modelClassNames,
    samples: () =>
      stemLabelledSamples(store, imagesRoot, (stem) => ({
        objects: { kind: 'yolo', labelUri: labels.has(`${stem}.txt`) ? joinStorageUri(labelsRoot, `${stem}.txt`) : null },
      })),
  };
}
