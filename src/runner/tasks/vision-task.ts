// What differs between vision tasks, behind one interface so that the pipeline (read ahead,
// batch, infer, report) is written once: how an image becomes a tensor, how a row of the model's
// outputs becomes a result, and how results are scored.
import type { EvaluationMetrics, ImageResult } from '../../contract/index.ts';
import type { WorkerOutput } from '../inference/worker-protocol.ts';
import type { Sample } from '../pipeline/inputs.ts';
import type { XaiGeometry } from '../xai/overlay.ts';

/** The fields a task fills in an image's result (the pipeline adds index, path, timings, error). */
export type TaskFields = Omit<ImageResult, 'image_index' | 'image_path' | 'timings' | 'error'>;

/**
 * What one image contributes to a test run's evaluation, as JSON: kept beside its result in the
 * job's parts, so that a resumed or sharded job scores every image, in image order, without
 * running any again (metrics identical to one uninterrupted run).
 */
export type EvaluationRecord = unknown;

/** An image's fields, and its evaluation record when the job scores. */
export interface Interpreted {
  fields: TaskFields;
  record: EvaluationRecord | null;
}

/** A test run's evaluation, fed the images' records in image order. */
export interface Evaluation {
  absorb(record: EvaluationRecord): void;
  metrics(): EvaluationMetrics;
}

export interface VisionTask<C> {
  /** Reads the image's labels, decodes and preprocesses it (runs ahead of inference, in parallel). */
  prepare(bytes: Uint8Array, sample: Sample): Promise<{ tensor: Float32Array | Uint8Array; context: C }>;
  /** Row `row` of a batch's outputs to the image's result; in a test run also scores the image on its own. */
  interpret(outputs: WorkerOutput[], row: number, context: C, sample: Sample): Promise<Interpreted>;
  /** The result of an image that could not be read or decoded (its labels still count where they can). */
  unreadable(sample: Sample): Interpreted;
  /** An empty evaluation of the run; null when not scoring. */
  newEvaluation(): Evaluation | null;
  /** How the image's original pixels and the network input correspond (for explanations). */
  xaiGeometry(context: C): XaiGeometry;
}

/** The geometry of a letterboxed image (objects, semantic segmentation). */
export function letterboxXaiGeometry(
  g: { left: number; top: number; gainX: number; gainY: number },
  original: { width: number; height: number },
  inputSize: [number, number],
): XaiGeometry {
  return {
    original,
    input: { width: inputSize[1], height: inputSize[0] },
    toNetwork: (x, y) => [x * g.gainX + g.left, y * g.gainY + g.top],
    toOriginal: (x, y) => [(x - g.left) / g.gainX, (y - g.top) / g.gainY],
  };
}

/** Row `row` of an output whose first dimension is the batch. */
export function outputRow(output: WorkerOutput, row: number): Float32Array {
  const perRow = output.dims.slice(1).reduce((a, b) => a * b, 1);
  return new Float32Array(output.data, row * perRow * 4, perRow);
}

/** The empty prediction fields of an image without a prediction. */
export const NO_PREDICTION = { predicted_class_id: null, predicted_label: null, confidence: null, predictions: null } as const;
