// Semantic segmentation: letterboxed input, per-pixel class scores [B, nc, h, w] out (any output
// resolution), argmax, taken back to the original pixels (nearest, through the letterbox). The
// class map is written as a PNG of class ids; a test run scores it against the ground-truth PNG
// (mIoU, mAcc, pixel accuracy over the dataset, mmsegmentation's definitions).
import { joinStorageUri, type EvaluationMetrics, type ModelMetadata, type PerClassMetric } from '../../contract/index.ts';
import { ImageDecodeError, type InputLayout } from '../classification/preprocess.ts';
import { letterboxGeometry, letterboxTensor, pictureSource, type Letterbox } from '../detection/letterbox.ts';
import { loadSharp } from '../image/sharp-loader.ts';
import type { BackgroundWrites } from '../io/background-writes.ts';
import type { ObjectStore } from '../io/object-store.ts';
import type { WorkerOutput } from '../inference/worker-protocol.ts';
import type { Sample } from '../pipeline/inputs.ts';
import { SegmentationAccumulator, type SegmentationCounts } from '../segmentation/miou.ts';
import type { Visualizer } from '../visualize/visualizer.ts';
import { letterboxXaiGeometry, NO_PREDICTION, outputRow, type Evaluation, type Interpreted, type TaskFields, type VisionTask } from './vision-task.ts';
import type { XaiGeometry } from '../xai/overlay.ts';

export interface SemanticTaskOptions {
  metadata: ModelMetadata;
  classNames: string[];
  evaluate: boolean;
  ignoreIndex: number;
  store: ObjectStore;
  /** Where the predicted class-id PNGs go (`{artifacts}/masks`). */
  masksUri: string;
  writes: BackgroundWrites;
  visualizer?: Visualizer | undefined;
  /** How the network input is handed over (the model's). */
  layout?: InputLayout | undefined;
}

interface Context {
  original: { width: number; height: number };
  bytes: Uint8Array;
  /** The letterboxed pixels when they are the network input itself (uint8 layout) and a picture is drawn. */
  letterboxed: Uint8Array | undefined;
  geometry: Letterbox;
  label: Uint8Array | undefined;
}

/** A figure that no pixel defines (NaN in the accumulator) as the API writes it. */
const num = (v: number): number | null => (Number.isNaN(v) ? null : v);

/** A ground-truth PNG as class ids: one 8-bit grey channel, the image's size. */
export async function readLabelPng(bytes: Uint8Array, size: { width: number; height: number }, uri: string): Promise<Uint8Array> {
  const sharp = await loadSharp();
  const image = sharp(bytes, { failOn: 'error' });
  const meta = await image.metadata();
  if (meta.format !== 'png') throw new ImageDecodeError(`ground-truth mask ${uri} is ${meta.format}, not PNG`);
  if (meta.isPalette || (meta.channels ?? 1) > 2 || meta.depth !== 'uchar') {
    throw new ImageDecodeError(
      `ground-truth mask ${uri} must be an 8-bit greyscale PNG of class ids (it is ${meta.isPalette ? 'a palette' : `${meta.channels}-channel ${meta.depth}`} PNG)`,
    );
  }
  if (meta.width !== size.width || meta.height !== size.height) {
    throw new ImageDecodeError(`ground-truth mask ${uri} is ${meta.width}x${meta.height}, its image ${size.width}x${size.height}`);
  }
  const { data } = await image.extractChannel(0).raw().toBuffer({ resolveWithObject: true });
  return new Uint8Array(data.buffer, data.byteOffset, data.length);
}

export class SemanticTask implements VisionTask<Context> {
  readonly #o: SemanticTaskOptions;
  readonly #evaluate: boolean;

  constructor(o: SemanticTaskOptions) {
    this.#o = o;
    this.#evaluate = o.evaluate;
  }

  async prepare(bytes: Uint8Array, sample: Sample): Promise<{ tensor: Float32Array | Uint8Array; context: Context }> {
    const { tensor, pixels, geometry, original } = await letterboxTensor(bytes, this.#o.metadata.inputSize, this.#o.metadata, 'predict', this.#o.layout);
    // As ObjectTask: the picture is drawn on the image's own pixels out of the letterboxed ones
    // where they were not resampled (and are the input tensor already).
    const letterboxed = this.#o.visualizer && tensor === pixels ? pixels : undefined;
    const label = this.#o.evaluate && sample.maskUri ? await readLabelPng(await this.#o.store.read(sample.maskUri), original, sample.maskUri) : undefined;
    return { tensor, context: { original, bytes, letterboxed, geometry, label } };
  }

  /** Argmax at the output's resolution, then each original pixel reads the cell under its centre. */
  #classMap(scores: Float32Array, dims: number[], original: { width: number; height: number }): Uint8Array {
    const [, nc, oh, ow] = dims as [number, number, number, number];
    const plane = oh * ow;
    const best = new Uint16Array(plane);
    for (let i = 0; i < plane; i++) {
      let arg = 0;
      let max = scores[i]!;
      for (let c = 1; c < nc; c++) {
        const v = scores[c * plane + i]!;
        if (v > max) {
          max = v;
          arg = c;
        }
      }
      best[i] = arg;
    }
    const [inH, inW] = this.#o.metadata.inputSize;
    const g = letterboxGeometry(original.width, original.height, this.#o.metadata.inputSize);
    const { width: W, height: H } = original;
    const col = Int32Array.from({ length: W }, (_, x) => Math.min(ow - 1, Math.floor(((g.left + ((x + 0.5) * g.width) / W) * ow) / inW)));
    const out = new Uint8Array(W * H);
    for (let y = 0; y < H; y++) {
      const row = Math.min(oh - 1, Math.floor(((g.top + ((y + 0.5) * g.height) / H) * oh) / inH)) * ow;
      for (let x = 0; x < W; x++) out[y * W + x] = best[row + col[x]!]!;
    }
    return out;
  }

  async interpret(outputs: WorkerOutput[], row: number, ctx: Context, sample: Sample): Promise<Interpreted> {
    const map = this.#classMap(outputRow(outputs[0]!, row), outputs[0]!.dims, ctx.original);
    const { width, height } = ctx.original;
    const counts = new Uint32Array(this.#o.classNames.length);
    for (const c of map) counts[c]!++;
    const dominant = counts.reduce((best, n, c) => (n > counts[best]! ? c : best), 0);
    const maskPath = joinStorageUri(this.#o.masksUri, `${String(sample.index).padStart(6, '0')}.png`);
    await this.#o.writes.add(maskPath, async () =>
      this.#o.store.write(
        maskPath,
        await this.#o.writes.prepare(async () =>
          (await loadSharp())(Buffer.from(map.buffer, map.byteOffset, map.length), { raw: { width, height, channels: 1 } })
            .toColourspace('b-w')
            .png()
            .toBuffer(),
        ),
        'image/png',
      ),
    );
    const fields: TaskFields = {
      predicted_class_id: dominant,
      predicted_label: this.#o.classNames[dominant] ?? null,
      confidence: counts[dominant]! / map.length,
      // The classes present, largest area first; confidence = the share of the image's pixels.
      predictions: [...counts.entries()]
        .filter(([, n]) => n > 0)
        .sort((a, b) => b[1] - a[1] || a[0] - b[0])
        .map(([c, n]) => ({ class_id: c, class_name: this.#o.classNames[c] ?? `class_${c}`, confidence: n / map.length })),
      image_id: sample.imageId ?? sample.index,
      mask_path: maskPath,
    };
    let record: SegmentationCounts | null = null;
    if (this.#evaluate && ctx.label) {
      // One pass over the pixels: the image's own counts, which the dataset's evaluation sums.
      const own = new SegmentationAccumulator(this.#o.classNames.length, this.#o.ignoreIndex);
      own.add(map, ctx.label);
      record = own.counts();
      const r = own.result();
      fields.image_metrics = { pixel_accuracy: num(r.aAcc), mean_iou: num(r.mIoU) };
      fields.is_correct = Number.isNaN(r.mIoU) ? null : r.mIoU >= 0.5;
    }
    if (this.#o.visualizer) {
      const image = pictureSource(ctx.bytes, ctx.letterboxed, ctx.geometry, ctx.original);
      fields.visualization_path = await this.#o.visualizer.classMap(sample, image, map, width, height);
    }
    return { fields, record };
  }

  xaiGeometry(ctx: Context): XaiGeometry {
    const g = letterboxGeometry(ctx.original.width, ctx.original.height, this.#o.metadata.inputSize);
    return letterboxXaiGeometry(g, ctx.original, this.#o.metadata.inputSize);
  }

  unreadable(sample: Sample): Interpreted {
    return {
      fields: { ...NO_PREDICTION, image_id: sample.imageId ?? sample.index, mask_path: null, ...(this.#evaluate ? { is_correct: null } : {}) },
      record: null,
    };
  }

  newEvaluation(): Evaluation | null {
    if (!this.#evaluate) return null;
    const total = new SegmentationAccumulator(this.#o.classNames.length, this.#o.ignoreIndex);
    return { absorb: (record) => total.addCounts(record as SegmentationCounts), metrics: () => this.#metrics(total) };
  }

  #metrics(total: SegmentationAccumulator): EvaluationMetrics {
    const r = total.result();
    const perClass: PerClassMetric[] = r.perClass.map((c) => {
      const precision = c.pred_pixels === 0 ? null : c.intersect_pixels / c.pred_pixels;
      const recall = num(c.acc);
      const f1 = c.pred_pixels + c.label_pixels === 0 ? null : (2 * c.intersect_pixels) / (c.pred_pixels + c.label_pixels);
      return { class_id: c.class_id, class_name: this.#o.classNames[c.class_id]!, precision, recall, f1, support: c.label_pixels, iou: num(c.iou) };
    });
    return {
      overall_metrics: { mIoU: num(r.mIoU), mAcc: num(r.mAcc), pixel_accuracy: num(r.aAcc) },
      per_class_metrics: perClass,
      confusion_matrix: [],
      class_names: [...this.#o.classNames],
      primary_metric_name: 'mIoU',
      primary_metric_value: num(r.mIoU),
    };
  }
}
