// Object detection, instance segmentation and pose estimation with YOLOv8/YOLO11-style exports,
// [B, 4 + nc (+ 32 | + K*D), N] out (plus prototypes [B, 32, H/4, W/4] for segmentation), or an
// end-to-end [B, N, 6] detection output, handled as Ultralytics 8.4 does: a test run as `yolo val`
// (its preprocessing, multi-label NMS, masks as its COCO JSON has them), an inference job as
// `yolo predict` (letterbox, best class, retina masks, detections with an empty mask dropped).
// Boxes, masks and keypoints go back to the original image's pixels; a test run is scored by
// pycocotools and by Ultralytics' own metrics, against COCO or YOLO labels.
import type { DetectedObject, EvaluationMetrics, GroundTruthObject, TaskType } from '../../contract/index.ts';
import { cocoGroundTruth } from '../datasets/coco-annotations.ts';
import { parseYoloLabels } from '../datasets/yolo-labels.ts';
import type { CocoDetection, CocoGroundTruth, IouType } from '../detection/coco-eval.ts';
import { instanceMask } from '../detection/instance-masks.ts';
import { letterboxTensor, pointToOriginal, scaleBoxes, pictureSource, type Letterbox, type LetterboxMode } from '../detection/letterbox.ts';
import { ObjectEvaluator } from '../detection/object-evaluator.ts';
import { UltralyticsMetrics, ultralyticsSigmas, type UltralyticsImage } from '../detection/ultralytics-metrics.ts';
import { labelsToNetwork } from '../detection/ultralytics-labels.ts';
import { decodeEndToEnd, decodeYolo, type Detection, type NmsOptions } from '../detection/yolo-postprocess.ts';
import type { WorkerOutput } from '../inference/worker-protocol.ts';
import type { ObjectStore } from '../io/object-store.ts';
import { isEndToEndDetection, type ModelMetadata } from '../../contract/index.ts';
import type { Sample } from '../pipeline/inputs.ts';
import { rleToString, type Rle } from '../segmentation/rle.ts';
import type { Visualizer } from '../visualize/visualizer.ts';
import type { InputLayout } from '../classification/preprocess.ts';
import { letterboxXaiGeometry, NO_PREDICTION, outputRow, type Evaluation, type Interpreted, type TaskFields, type VisionTask } from './vision-task.ts';
import type { XaiGeometry } from '../xai/overlay.ts';

const IOU_TYPE: Partial<Record<TaskType, IouType>> = { object_detection: 'bbox', instance_segmentation: 'segm', pose_estimation: 'keypoints' };

export interface ObjectTaskOptions {
  task: TaskType;
  metadata: ModelMetadata;
  classNames: string[];
  /** Dataset category id of each class (defaults to the class id). */
  categoryIds?: number[] | undefined;
  evaluatedCategoryIds?: number[] | undefined;
  nms: NmsOptions;
  /** val: a test run as `yolo val` runs it; predict: an inference job as `yolo predict`. */
  mode: LetterboxMode;
  /** Output shapes as the session reports them, to tell the layouts apart. */
  outputShapes: number[][];
  evaluate: boolean;
  store: ObjectStore;
  visualizer?: Visualizer | undefined;
  /** How the network input is handed over (the model's). */
  layout?: InputLayout | undefined;
}

/** One image's part in the evaluation: ObjectEvaluator.add's arguments, and UltralyticsMetrics.add's as plain arrays. */
interface ObjectRecord {
  coco: [imageId: number, gts: CocoGroundTruth[], dets: CocoDetection[]];
  ultralytics: { [K in keyof UltralyticsImage]: number[] } | null;
}

interface Context {
  original: { width: number; height: number };
  geometry: Letterbox;
  bytes: Uint8Array;
  /** The letterboxed pixels when they are the network input itself (uint8 layout) and a picture is drawn. */
  letterboxed: Uint8Array | undefined;
  gts: CocoGroundTruth[] | undefined;
}

export class ObjectTask implements VisionTask<Context> {
  readonly #o: ObjectTaskOptions;
  readonly #nc: number;
  readonly #kpt: [number, number] | undefined;
  readonly #endToEnd: boolean;
  readonly #categoryIds: number[];
  readonly #classOf: Map<number, number>;
  /** Scores each image on its own (its figures, the per-class counts); the dataset's evaluation is newEvaluation's. */
  readonly #evaluator: ObjectEvaluator | undefined;
  #nextAnnotationId = 1;

  constructor(o: ObjectTaskOptions) {
    this.#o = o;
    this.#nc = o.classNames.length;
    this.#kpt = o.task === 'pose_estimation' ? (o.metadata.kptShape ?? [17, 3]) : undefined;
    // The layout was checked against the task when the model was loaded (describeModel).
    this.#endToEnd = isEndToEndDetection(o.task, o.outputShapes, this.#nc);
    this.#categoryIds = o.categoryIds ?? o.classNames.map((_, i) => i);
    this.#classOf = new Map(this.#categoryIds.map((c, i) => [c, i]));
    this.#evaluator = o.evaluate ? this.#objectEvaluator(false) : undefined;
  }

  #objectEvaluator(keep: boolean): ObjectEvaluator {
    return new ObjectEvaluator({
      iouType: IOU_TYPE[this.#o.task]!,
      classNames: this.#o.classNames,
      categoryIds: this.#categoryIds,
      evaluatedCategoryIds: this.#o.evaluatedCategoryIds ?? this.#categoryIds,
      keypoints: this.#kpt?.[0],
      keep,
    });
  }

  async prepare(bytes: Uint8Array, sample: Sample): Promise<{ tensor: Float32Array | Uint8Array; context: Context }> {
    const { tensor, pixels, original, geometry } = await letterboxTensor(bytes, this.#o.metadata.inputSize, this.#o.metadata, this.#o.mode, this.#o.layout);
    const gts = this.#o.evaluate ? await this.#groundTruth(sample, original) : undefined;
    // The picture is drawn on the image's own pixels out of these where the letterbox did not
    // resample it: one decode instead of two. Kept only where they are the input tensor already.
    const letterboxed = this.#o.visualizer && tensor === pixels ? pixels : undefined;
    return { tensor, context: { original, geometry, bytes, letterboxed, gts } };
  }

  async #groundTruth(sample: Sample, size: { width: number; height: number }): Promise<CocoGroundTruth[] | undefined> {
    const labels = sample.objects;
    if (!labels) return undefined;
    if (labels.kind === 'coco') return cocoGroundTruth(labels.annotations, labels.image, this.#o.task === 'instance_segmentation');
    if (labels.labelUri === null) return [];
    const text = (await this.#o.store.read(labels.labelUri)).toString('utf8');
    // Ids are handed out as images are prepared: unique, which is all pycocotools needs of them.
    const firstId = this.#nextAnnotationId;
    this.#nextAnnotationId += text.split('\n').length + 1;
    try {
      return parseYoloLabels(text, {
        task: this.#o.task,
        numClasses: this.#nc,
        kptShape: this.#kpt as [number, 2 | 3] | undefined,
        imageId: sample.imageId ?? sample.index,
        firstId,
        ...size,
      });
    } catch (err) {
      throw new Error(`${labels.labelUri}: ${(err as Error).message}`);
    }
  }

  async interpret(outputs: WorkerOutput[], row: number, ctx: Context, sample: Sample): Promise<Interpreted> {
    const { inputSize } = this.#o.metadata;
    const out = outputRow(outputs[0]!, row);
    const dims = outputs[0]!.dims;
    const raw = this.#endToEnd ? decodeEndToEnd(out, dims[1]!, this.#o.nms) : decodeYolo(out, this.#nc, dims[2]!, this.#o.nms);
    let found = raw.filter((d) => d.classId >= 0 && d.classId < this.#nc);
    let boxes = scaleBoxes(
      found.map((d) => d.box),
      ctx.geometry,
      ctx.original,
    );
    const anchors = dims[2]!;
    let masks: Rle[] = [];
    if (this.#o.task === 'instance_segmentation') {
      const protos = { data: outputRow(outputs[1]!, row), channels: outputs[1]!.dims[1]!, height: outputs[1]!.dims[2]!, width: outputs[1]!.dims[3]! };
      const m = { mode: this.#o.mode, inputSize, geometry: ctx.geometry, original: ctx.original };
      masks = found.map((d, i) => {
        const coefficients = Array.from({ length: protos.channels }, (_, k) => out[(4 + this.#nc + k) * anchors + d.anchor]!);
        return instanceMask(protos, coefficients, { network: d.box, original: boxes[i]! }, m);
      });
      if (this.#o.mode === 'predict') {
        // The predictor keeps only predictions with a mask.
        const keep = masks.map((mask) => mask.counts.length > 1);
        found = found.filter((_, i) => keep[i]);
        boxes = boxes.filter((_, i) => keep[i]);
        masks = masks.filter((_, i) => keep[i]);
      }
    }
    const detections: DetectedObject[] = found.map((d, i) => {
      const object: DetectedObject = {
        class_id: d.classId,
        class_name: this.#o.classNames[d.classId]!,
        category_id: this.#categoryIds[d.classId]!,
        confidence: d.score,
        bbox: boxes[i]!,
      };
      if (masks[i]) object.mask = { size: masks[i].size, counts: rleToString(masks[i]) };
      if (this.#kpt) object.keypoints = this.#keypoints(out, anchors, d.anchor, ctx);
      return object;
    });
    const ultralytics = this.#evaluator && ctx.gts ? this.#ultralyticsImage(found, out, anchors, ctx) : null;

    const fields: TaskFields = {
      ...(detections[0]
        ? { predicted_class_id: detections[0].class_id, predicted_label: detections[0].class_name, confidence: detections[0].confidence, predictions: null }
        : NO_PREDICTION),
      image_id: sample.imageId ?? sample.index,
      detections,
    };
    let record: ObjectRecord | null = null;
    if (this.#evaluator && ctx.gts) {
      const dets: CocoDetection[] = detections.map((d, i) => ({
        image_id: fields.image_id!,
        category_id: d.category_id,
        bbox: [d.bbox[0], d.bbox[1], d.bbox[2] - d.bbox[0], d.bbox[3] - d.bbox[1]],
        score: d.confidence,
        ...(masks[i] ? { segmentation: masks[i] } : {}),
        ...(d.keypoints ? { keypoints: d.keypoints } : {}),
      }));
      const score = this.#evaluator.add(fields.image_id!, ctx.gts, dets);
      record = { coco: [fields.image_id!, ctx.gts, dets], ultralytics };
      detections.forEach((d, i) => (d.match_iou = score.matchIous[i]!));
      const matched = score.matchIous.filter((v): v is number => v !== null);
      fields.ground_truth = this.#groundTruthObjects(ctx.gts);
      fields.image_metrics = {
        tp: score.tp,
        fp: score.fp,
        fn: score.fn,
        mean_iou: matched.length ? matched.reduce((a, b) => a + b, 0) / matched.length : null,
      };
      fields.is_correct = score.fp === 0 && score.fn === 0;
    }
    if (this.#o.visualizer) {
      const image = pictureSource(ctx.bytes, ctx.letterboxed, ctx.geometry, ctx.original);
      fields.visualization_path = await this.#o.visualizer.objects(sample, image, detections, this.#kpt?.[0]);
    }
    return { fields, record };
  }

  /** An anchor's keypoints: network pixels (for Ultralytics' metrics), or original ones (scale_coords). */
  #keypoints(out: Float32Array, anchors: number, anchor: number, ctx: Context, space: 'original' | 'network' = 'original'): number[] {
    const [k, d] = this.#kpt!;
    const base = 4 + this.#nc;
    const values: number[] = [];
    for (let i = 0; i < k; i++) {
      const at = (j: number) => out[(base + i * d + j) * anchors + anchor]!;
      const xy: [number, number] = space === 'network' ? [at(0), at(1)] : pointToOriginal(at(0), at(1), ctx.geometry, ctx.original);
      values.push(...xy, d === 3 ? at(2) : 1);
    }
    return values;
  }

  /** One image as `yolo val`'s own metrics take it: predictions as NMS left them, labels letterboxed, in network pixels. */
  #ultralyticsImage(found: Detection[], out: Float32Array, anchors: number, ctx: Context): ObjectRecord['ultralytics'] {
    const labels = labelsToNetwork(
      // As Ultralytics' COCO converter, crowd regions are not labels.
      ctx.gts!.filter((g) => g.iscrowd !== 1),
      { geometry: ctx.geometry, original: ctx.original, inputSize: this.#o.metadata.inputSize, classOf: (c) => this.#classOf.get(c) },
    );
    // Float32 values as JSON numbers: read back into Float32Arrays, they are the same values.
    const f32 = (a: ArrayLike<number>) => Array.from(Float32Array.from(a));
    return {
      predBoxes: f32(found.flatMap((d) => d.box)),
      predClass: found.map((d) => d.classId),
      conf: f32(found.map((d) => d.score)),
      ...(this.#kpt ? { predKeypoints: f32(found.flatMap((d) => this.#keypoints(out, anchors, d.anchor, ctx, 'network'))) } : {}),
      labelBoxes: Array.from(labels.boxes),
      labelClass: Array.from(labels.classes),
      ...(labels.keypoints ? { labelKeypoints: Array.from(labels.keypoints) } : {}),
    };
  }

  #groundTruthObjects(gts: CocoGroundTruth[]): GroundTruthObject[] {
    return gts.map((g) => {
      const cls = this.#classOf.get(g.category_id) ?? 0;
      return {
        class_id: cls,
        class_name: this.#o.classNames[cls] ?? String(g.category_id),
        bbox: [g.bbox[0], g.bbox[1], g.bbox[0] + g.bbox[2], g.bbox[1] + g.bbox[3]],
        iscrowd: g.iscrowd === 1,
        ...(g.keypoints ? { keypoints: g.keypoints } : {}),
      };
    });
  }

  xaiGeometry(ctx: Context): XaiGeometry {
    return letterboxXaiGeometry(ctx.geometry, ctx.original, this.#o.metadata.inputSize);
  }

  unreadable(sample: Sample): Interpreted {
    const fields: TaskFields = { ...NO_PREDICTION, image_id: sample.imageId ?? sample.index, detections: null };
    let record: ObjectRecord | null = null;
    // A COCO image that cannot be read still has its objects: they count as missed. YOLO labels
    // are normalized to an image size nobody could read, so that image is left out.
    if (this.#evaluator && sample.objects?.kind === 'coco') {
      const gts = cocoGroundTruth(sample.objects.annotations, sample.objects.image, this.#o.task === 'instance_segmentation');
      const score = this.#evaluator.add(fields.image_id!, gts, []);
      // Not in Ultralytics' metrics: `yolo val` never sees an image it cannot read.
      record = { coco: [fields.image_id!, gts, []], ultralytics: null };
      fields.ground_truth = this.#groundTruthObjects(gts);
      fields.image_metrics = { tp: 0, fp: 0, fn: score.fn, mean_iou: null };
      fields.is_correct = null;
    }
    return { fields, record };
  }

  newEvaluation(): Evaluation | null {
    if (!this.#evaluator) return null;
    const coco = this.#objectEvaluator(true);
    const ultralytics = new UltralyticsMetrics(this.#o.task === 'pose_estimation' ? ['B', 'P'] : ['B'], this.#kpt && ultralyticsSigmas(this.#kpt[0]));
    return {
      absorb: (r) => {
        const record = r as ObjectRecord;
        coco.add(...record.coco);
        const u = record.ultralytics;
        if (u)
          ultralytics.add({
            predBoxes: Float32Array.from(u.predBoxes),
            predClass: Int32Array.from(u.predClass),
            conf: Float32Array.from(u.conf),
            ...(u.predKeypoints ? { predKeypoints: Float32Array.from(u.predKeypoints) } : {}),
            labelBoxes: Float32Array.from(u.labelBoxes),
            labelClass: Int32Array.from(u.labelClass),
            ...(u.labelKeypoints ? { labelKeypoints: Float32Array.from(u.labelKeypoints) } : {}),
          });
      },
      metrics: () => this.#metrics(coco, ultralytics),
    };
  }

  #metrics(evaluator: ObjectEvaluator, metrics: UltralyticsMetrics): EvaluationMetrics {
    const coco = evaluator.result();
    // Ultralytics' own family beside pycocotools', labelled so that each compares with its tool.
    const ultralytics = metrics.result();
    for (const [key, value] of Object.entries(ultralytics.overall)) {
      // `yolo val` sums the mask family (M) into a segmentation model's fitness; kinfer computes
      // no M family (pycocotools' segm metrics stand for it), so it reports no fitness there.
      if (key === 'fitness' && this.#o.task === 'instance_segmentation') continue;
      coco.overall_metrics[key.replace(/^metrics\//, 'ultralytics/').replace(/^fitness$/, 'ultralytics/fitness')] = value;
    }
    for (const c of coco.per_class_metrics) {
      const u = ultralytics.perClass.get(c.class_id);
      c.ultralytics_ap50 = u ? u.ap50 : null;
      c.ultralytics_ap = u ? u.ap : null;
    }
    return coco;
  }
}
