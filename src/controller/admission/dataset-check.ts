// Submit-time checks of a test run's dataset against its model, by the layout its task reads:
// ImageFolder class folders, a COCO annotation file or YOLO folders, images with masks. Class
// names are matched with the contract's rule (the runner applies the same when it starts).
import { z } from 'zod';
import { canonicalStorageUri, cocoDatasetClasses, joinStorageUri, matchDatasetClasses, OBJECT_TASK_TYPES, type ModelMetadata } from '../../contract/index.ts';
import type { FieldProblem } from '../../http/errors.ts';
import type { StorageClient } from '../../storage/object-store.ts';
import type { TestRunDefinition } from '../job-mapping.ts';

export const COCO_ANNOTATIONS_FILE = 'annotations.json';
/**
 * Annotation files up to this size are read at submit time to match their categories; a bigger
 * one (COCO train is 450 MB) is left to the runner, which checks the same rule when it starts.
 */
export const MAX_ANNOTATIONS_BYTES = 32 << 20;

/** Only what the class rule needs of a COCO file. */
const CocoCategories = z.object({
  categories: z.array(z.object({ id: z.number().int(), name: z.string() })).min(1),
  annotations: z.array(z.object({ category_id: z.number().int() })).default([]),
});

const problem = (message: string): FieldProblem => ({ field: 'dataset_path', message });

export async function datasetProblems(storage: StorageClient, def: TestRunDefinition, model: ModelMetadata, signal: AbortSignal): Promise<FieldProblem[]> {
  const root = joinStorageUri(canonicalStorageUri(def.dataset_path), def.dataset_split);
  if (def.task_type === 'image_classification') {
    const folders = await storage.listFolders(root, signal);
    if (folders.length === 0) return [problem(`no class folders under ${root}/ (ImageFolder layout: {dataset}/{split}/{class_name}/*.jpg)`)];
    return matchDatasetClasses(model, { classes: folders, ordered: false, what: 'class folders' }).problems.map(problem);
  }
  if (def.task_type === 'semantic_segmentation') {
    const missing: FieldProblem[] = [];
    for (const folder of ['images', 'masks']) {
      if (!(await storage.prefixExists(joinStorageUri(root, folder), signal)))
        missing.push(problem(`no ${folder}/ under ${root} (semantic segmentation layout: {split}/images/*.jpg and {split}/masks/*.png)`));
    }
    return missing;
  }
  if (!OBJECT_TASK_TYPES.includes(def.task_type)) return [];
  const annotationsUri = joinStorageUri(root, COCO_ANNOTATIONS_FILE);
  const annotations = await storage.stat(annotationsUri, signal);
  if (!annotations) {
    if (await storage.prefixExists(joinStorageUri(root, 'images'), signal)) return [];
    return [problem(`no dataset found under ${root}: expected COCO (${annotationsUri}) or YOLO (${root}/images/ with ${root}/labels/)`)];
  }
  if (annotations.size > MAX_ANNOTATIONS_BYTES) return [];
  let json: unknown;
  try {
    json = JSON.parse((await storage.read(annotationsUri, signal)).toString('utf8'));
  } catch (err) {
    if (err instanceof SyntaxError) return [problem(`${annotationsUri} is not valid JSON`)];
    throw err;
  }
  const file = CocoCategories.safeParse(json);
  if (!file.success)
    return [problem(`${annotationsUri} is not a COCO annotation file: ${file.error.issues[0]!.path.join('.')}: ${file.error.issues[0]!.message}`)];
  return matchDatasetClasses(model, cocoDatasetClasses(file.data)).problems.map(problem);
}
