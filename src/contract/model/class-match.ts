// How a labelled dataset's classes line up with a model's: by name when the model names its
// classes (a model may know more classes than the dataset, never fewer), by sorted name and count
// when it does not (torchvision's ImageFolder order). The controller refuses a mismatch at submit
// time; the runner applies the same rule when it opens the dataset.
import type { ModelMetadata } from './metadata.ts';

const listed = (names: readonly string[]) => `${names.slice(0, 10).join(', ')}${names.length > 10 ? ', ...' : ''}`;

export interface ClassMatch {
  /** The classes of the job, in class-id order: the model's names, or the dataset's sorted. */
  classNames: string[];
  problems: string[];
}

export interface DatasetClasses {
  /** Every class the dataset defines (ImageFolder folders; COCO categories in id order). */
  classes: readonly string[];
  /** Those that label something (default: all); only these must be known to a model with names. */
  labelled?: readonly string[] | undefined;
  /** True when `classes` is already in class-id order (COCO); false to sort by name (ImageFolder). */
  ordered: boolean;
  /** What they are, for messages: "class folders", "annotated categories". */
  what: string;
}

export function matchDatasetClasses(model: Pick<ModelMetadata, 'classNames' | 'namedClasses'>, dataset: DatasetClasses): ClassMatch {
  const { what } = dataset;
  if (model.namedClasses) {
    const known = new Set(model.classNames);
    const unknown = [...new Set(dataset.labelled ?? dataset.classes)].filter((c) => !known.has(c));
    return {
      classNames: model.classNames,
      problems: unknown.length === 0 ? [] : [`dataset ${what} not among the model's classes: ${listed(unknown)} (model classes: ${listed(model.classNames)})`],
    };
  }
  const sorted = dataset.ordered ? [...dataset.classes] : [...new Set(dataset.classes)].sort();
  const outputs = model.classNames.length;
  const problems =
    outputs > 0 && sorted.length !== outputs
      ? [
          `the model names no classes and outputs ${outputs} class scores, but the dataset has ${sorted.length} ${what} (${listed(sorted)}): give the model its class names (metadata_props names, or a sidecar <checkpoint>.json)`,
        ]
      : [];
  return { classNames: sorted, problems };
}

/** A COCO annotation file's categories as the class rule sees them: all in id order, and those that label something. */
export function cocoDatasetClasses(file: {
  categories: ReadonlyArray<{ id: number; name: string }>;
  annotations: ReadonlyArray<{ category_id: number }>;
}): DatasetClasses {
  const categories = [...file.categories].sort((a, b) => a.id - b.id);
  const used = new Set(file.annotations.map((a) => a.category_id));
  return {
    classes: categories.map((c) => c.name),
    labelled: categories.filter((c) => used.has(c.id)).map((c) => c.name),
    ordered: true,
    what: 'annotated categories',
  };
}
