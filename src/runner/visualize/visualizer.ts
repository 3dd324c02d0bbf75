// Where pictures of predictions go: `{artifacts}/visualizations/{index}.jpg`, one per image,
// written in the background so drawing overlaps inference.
import { ARTIFACT_NAMES, joinStorageUri, type DetectedObject } from '../../contract/index.ts';
import type { BackgroundWrites } from '../io/background-writes.ts';
import type { ObjectStore } from '../io/object-store.ts';
import type { Sample } from '../pipeline/inputs.ts';
import { drawClassMap, drawObjects, type RgbPixels } from './draw.ts';

export class Visualizer {
  readonly #store: ObjectStore;
  readonly #root: string;
  readonly #writes: BackgroundWrites;

  constructor(store: ObjectStore, artifactsUri: string, writes: BackgroundWrites) {
    this.#store = store;
    this.#root = joinStorageUri(artifactsUri, ARTIFACT_NAMES.visualizations);
    this.#writes = writes;
  }

  /** Schedules the picture; returns where it will be. */
  async #schedule(sample: Sample, draw: () => Promise<Buffer>): Promise<string> {
    const uri = joinStorageUri(this.#root, `${String(sample.index).padStart(6, '0')}.jpg`);
    await this.#writes.add(uri, async () => this.#store.write(uri, await draw(), 'image/jpeg'));
    return uri;
  }

  /** `image`: the encoded image, or its decoded pixels (drawn on in place). */
  objects(sample: Sample, image: Uint8Array | RgbPixels, detections: DetectedObject[], keypointCount?: number): Promise<string> {
    return this.#schedule(sample, () => drawObjects(image, detections, keypointCount));
  }

  classMap(sample: Sample, image: Uint8Array | RgbPixels, map: Uint8Array | Uint16Array, width: number, height: number): Promise<string> {
    return this.#schedule(sample, () => drawClassMap(image, map, width, height));
  }
}
