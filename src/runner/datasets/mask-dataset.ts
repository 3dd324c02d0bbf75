// Semantic segmentation test-run datasets: `{split}/images/**` and, for each image, a PNG of
// class ids with the same stem under `{split}/masks/**` (pixel value = class id, IGNORE_INDEX not
// scored). An image without a mask is an error entry of its own, not a silent skip.
import { canonicalStorageUri, joinStorageUri } from '../../contract/index.ts';
import type { ObjectStore } from '../io/object-store.ts';
import { countImages, DatasetError, stemLabelledSamples, type SampleSource } from '../pipeline/inputs.ts';

export async function maskDatasetSource(store: ObjectStore, datasetPath: string, split: string, modelClassNames: readonly string[]): Promise<SampleSource> {
  const root = joinStorageUri(canonicalStorageUri(datasetPath), split);
  const imagesRoot = joinStorageUri(root, 'images');
  const masksRoot = joinStorageUri(root, 'masks');
  const total = await countImages(store, imagesRoot);
  if (total === 0) throw new DatasetError(`no images found under ${imagesRoot} (semantic segmentation layout: {split}/images/*.jpg and {split}/masks/*.png)`);
  let masks = 0;
  for await (const uri of store.list(masksRoot)) if (uri.endsWith('.png')) masks++;
  if (masks === 0) throw new DatasetError(`no ground-truth masks found under ${masksRoot} (one PNG of class ids per image, same stem)`);
  return {
    total,
    classNames: [...modelClassNames],
    samples: () => stemLabelledSamples(store, imagesRoot, (stem) => ({ maskUri: joinStorageUri(masksRoot, `${stem}.png`) })),
  };
}
