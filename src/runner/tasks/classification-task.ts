// Image classification: torchvision-style resize + center crop, top-k of the softmaxed scores,
// accuracy / top-5 / macro P-R-F1 and the confusion matrix over a labelled ImageFolder.
import type { EvaluationMetrics } from '../../contract/index.ts';
import { ClassificationMetrics } from '../classification/metrics.ts';
import { toProbabilities, topK } from '../classification/postprocess.ts';
import { preprocessClassificationWithGeometry, type CropGeometry, type InputLayout } from '../classification/preprocess.ts';
import type { XaiGeometry } from '../xai/overlay.ts';
import type { WorkerOutput } from '../inference/worker-protocol.ts';
import type { ModelMetadata } from '../../contract/index.ts';
import type { Sample } from '../pipeline/inputs.ts';
import { NO_PREDICTION, outputRow, type Evaluation, type Interpreted, type VisionTask } from './vision-task.ts';

/** [true class id, the ranked class ids]: ClassificationMetrics.add's arguments. */
type Record = [number, number[]];

export class ClassificationTask implements VisionTask<CropGeometry> {
  readonly #metadata: ModelMetadata;
  readonly #classNames: string[];
  readonly #evaluateClassIds: readonly number[] | undefined;
  readonly #topK: number;

  /** `evaluateClassIds`: when evaluating, the classes the dataset defines (see ClassificationMetrics). */
  readonly #layout: InputLayout;

  constructor(metadata: ModelMetadata, classNames: string[], evaluateClassIds: readonly number[] | undefined, topK = 5, layout: InputLayout = 'float32-nchw') {
    this.#layout = layout;
    this.#metadata = metadata;
    this.#topK = Math.max(topK, 5);
    this.#classNames = classNames;
    this.#evaluateClassIds = evaluateClassIds;
  }

  async prepare(bytes: Uint8Array): Promise<{ tensor: Float32Array | Uint8Array; context: CropGeometry }> {
    const { tensor, geometry } = await preprocessClassificationWithGeometry(bytes, this.#metadata, this.#layout);
    return { tensor, context: geometry };
  }

  /** The crop of the resized image the network saw; what lies outside it has no explanation. */
  xaiGeometry(g: CropGeometry): XaiGeometry {
    const [h, w] = this.#metadata.inputSize;
    const sx = g.resized.width / g.original.width;
    const sy = g.resized.height / g.original.height;
    return {
      original: g.original,
      input: { width: w, height: h },
      toNetwork: (x, y) => {
        const nx = x * sx - g.left;
        const ny = y * sy - g.top;
        return nx < 0 || ny < 0 || nx > w || ny > h ? null : [nx, ny];
      },
      toOriginal: (x, y) => [(x + g.left) / sx, (y + g.top) / sy],
    };
  }

  #labels(sample: Sample) {
    return sample.trueClassId === undefined ? {} : { true_class_id: sample.trueClassId, true_label: this.#classNames[sample.trueClassId] ?? null };
  }

  async interpret(outputs: WorkerOutput[], row: number, _context: CropGeometry, sample: Sample): Promise<Interpreted> {
    const ranked = topK(toProbabilities(outputRow(outputs[0]!, row)), this.#topK, this.#classNames);
    const best = ranked[0]!;
    const record: Record | null = this.#evaluateClassIds && sample.trueClassId !== undefined ? [sample.trueClassId, ranked.map((p) => p.class_id)] : null;
    return {
      fields: {
        predicted_class_id: best.class_id,
        predicted_label: best.class_name,
        confidence: best.confidence,
        predictions: ranked,
        ...this.#labels(sample),
        ...(sample.trueClassId === undefined ? {} : { is_correct: best.class_id === sample.trueClassId }),
      },
      record,
    };
  }

  /** An unreadable image is left out of the evaluation (it has no prediction to count). */
  unreadable(sample: Sample): Interpreted {
    return { fields: { ...NO_PREDICTION, ...this.#labels(sample), ...(sample.trueClassId === undefined ? {} : { is_correct: null }) }, record: null };
  }

  newEvaluation(): Evaluation | null {
    if (!this.#evaluateClassIds) return null;
    const metrics = new ClassificationMetrics(this.#classNames, this.#evaluateClassIds);
    return {
      absorb: (record) => {
        const [trueId, ranked] = record as Record;
        metrics.add(trueId, ranked);
      },
      metrics: (): EvaluationMetrics => metrics.result(),
    };
  }
}
