// Where pictures of predictions go: `{artifacts}/visualizations/{index}.jpg`, one per image,
// written in the background so that writing (and drawing from encoded bytes) overlaps inference.
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

  /**
   * Schedules the picture; returns where it will be. Decoded pixels are drawn before this
   * returns: they are the caller's (a window of the batch's input, freed or reused for later
   * images once the batch is reported). Encoded bytes are decoded and drawn in the background.
   */
  async #schedule(sample: Sample, image: Uint8Array | RgbPixels, draw: (image: Uint8Array | RgbPixels) => Promise<Buffer>): Promise<string> {
    const uri = joinStorageUri(this.#root, `${String(sample.index).padStart(6, '0')}.jpg`);
    // A picture that cannot be drawn fails as its write does: logged and counted, the image's result stands.
    const drawn = image instanceof Uint8Array ? undefined : await draw(image).catch((err: unknown) => err as Error);
    await this.#writes.add(uri, async () => {
      const jpeg = drawn ?? (await this.#writes.prepare(() => draw(image)));
      if (jpeg instanceof Error) throw jpeg;
      await this.#store.write(uri, jpeg, 'image/jpeg');
    });
    return uri;
  }

  /** `image`: the encoded image, or its decoded pixels (drawn on in place). */
  objects(sample: Sample, image: Uint8Array | RgbPixels, detections: DetectedObject[], keypointCount?: number): Promise<string> {
    return this.#schedule(sample, image, (i) => drawObjects(i, detections, keypointCount));
  }

  classMap(sample: Sample, image: Uint8Array | RgbPixels, map: Uint8Array | Uint16Array, width: number, height: number): Promise<string> {
    return this.#schedule(sample, image, (i) => drawClassMap(i, map, width, height));
  }
}
