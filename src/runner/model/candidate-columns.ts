// A YOLO output cut down to its candidates inside the session. A YOLOv8/YOLO11-style head outputs
// [B, 4 + nc (+ extra), N]: at batch 4, 640x640 and 80 classes, 11 MB a run, which onnxruntime-node
// copies into a fresh ArrayBuffer (pages faulted in) and the runner then scans for the few anchors
// with a class score above the confidence threshold. A few nodes put behind the head keep only the
// columns (anchors) where some image of the batch has a class score above it: the same rows
// `decodeYolo` takes, in the same order, so the detections are the same, from a few kilobytes.
// Raw `session.run` of the bench's detector (2026-12-04, interleaved rounds, batch 4): 77.6 against
// 80.7 ms a batch at conf 0.25, where 98 of 8,400 columns are left. Where most anchors pass (conf
// 0.001, `yolo val`'s) the same nodes cost more than the copy they save (87.6 against 80.7 ms): the
// runner asks for them only at a threshold where few pass (candidateColumnsWorthIt).
import {
  defaultOpset,
  FLOAT,
  graphField,
  INT32,
  graphFields,
  indexModel,
  nodeBytes,
  tensorBytes,
  valueInfo,
  valueInfoName,
  withGraph,
  type NewNode,
} from '../xai/onnx-edit.ts';

/** The output the edited model has in place of the head's (same position among the outputs). */
export const CANDIDATES_OUTPUT = 'kinfer_candidate_columns';

/**
 * At or above this confidence threshold the runner cuts a YOLO output down in the session. Below
 * it a head's background scores can pass for most anchors (the bench's untrained detector: all of
 * 8,400 at 0.001, 58% at 0.1, 1.2% at 0.25), where the extra nodes cost up to 8% of a run.
 */
const CANDIDATE_COLUMNS_MIN_CONF = 0.1;

export const candidateColumnsWorthIt = (conf: number): boolean => conf >= CANDIDATE_COLUMNS_MIN_CONF;

export interface CandidateColumns {
  /** The head's output, [B, 4 + nc (+ extra), N]. */
  output: string;
  /** Its class-score rows: 4 to 4 + numClasses. */
  numClasses: number;
  /** A column is kept where a score is above this (compared in float32, as decodeYolo does). */
  conf: number;
  /** The output's rank-3 shape from the graph (-1 where dynamic): kept but for the last dimension. */
  shape: number[];
}

/**
 * The model with its output `output` replaced by `CANDIDATES_OUTPUT`: the columns of `output`
 * where some image of the batch has its best class score above `conf`, in column order. A column
 * that is not a candidate for an image is not decoded for it anyway, so decoding the kept columns
 * gives each image its detections. Each image's best score is compared with `conf` before the
 * batch is reduced: ONNX Runtime's ReduceMax propagates a NaN or not depending on where it lies
 * (torch.amax always does, and Ultralytics drops that image's anchor), so over the whole batch one
 * image's NaN could drop a column another image has a candidate in. A column kept for a NaN is
 * dropped by decodeYolo, as Ultralytics drops it. Undefined where the model's opset is older than
 * Slice's inputs (10). Nothing else of the model changes.
 */
export function withCandidateColumns(bytes: Uint8Array, c: CandidateColumns): Uint8Array | undefined {
  const index = indexModel(bytes);
  const opset = defaultOpset(index);
  if (opset < 10) return undefined;
  // ReduceMax takes its axes as an input from opset 18, as an attribute before.
  const axesAsInput = opset >= 18;
  const reduceMax = (input: string, axis: number, output: string): NewNode => ({
    opType: 'ReduceMax',
    inputs: axesAsInput ? [input, `kinfer_cand_axis_${axis}`] : [input],
    outputs: [output],
    attributes: { keepdims: { i: 0 }, ...(axesAsInput ? {} : { axes: { ints: [axis] } }) },
  });
  const nodes: NewNode[] = [
    { opType: 'Slice', inputs: [c.output, 'kinfer_cand_from', 'kinfer_cand_to', 'kinfer_cand_axis'], outputs: ['kinfer_cand_scores'] },
    // [B, N]: each image's best score; NaN where one of its scores is.
    reduceMax('kinfer_cand_scores', 1, 'kinfer_cand_best'),
    { opType: 'Greater', inputs: ['kinfer_cand_best', 'kinfer_cand_conf'], outputs: ['kinfer_cand_above'] },
    // [N]: 1 where some image's is above (ReduceMax takes no bool).
    { opType: 'Cast', inputs: ['kinfer_cand_above'], outputs: ['kinfer_cand_above_int'], attributes: { to: { i: INT32 } } },
    reduceMax('kinfer_cand_above_int', 0, 'kinfer_cand_kept'),
    { opType: 'NonZero', inputs: ['kinfer_cand_kept'], outputs: ['kinfer_cand_nonzero'] },
    { opType: 'Reshape', inputs: ['kinfer_cand_nonzero', 'kinfer_cand_flat'], outputs: ['kinfer_cand_columns'] },
    // Gather rather than Compress: ONNX Runtime's Compress walks every element (1.3 ms a batch
    // with 98 of 8,400 columns kept), Gather only the kept columns.
    { opType: 'Gather', inputs: [c.output, 'kinfer_cand_columns'], outputs: [CANDIDATES_OUTPUT], attributes: { axis: { i: 2 } } },
  ];
  const int64 = (values: number[]) => BigInt64Array.from(values.map(BigInt));
  const constants = [
    tensorBytes('kinfer_cand_from', [1], int64([4])),
    tensorBytes('kinfer_cand_to', [1], int64([4 + c.numClasses])),
    tensorBytes('kinfer_cand_axis', [1], int64([1])),
    ...(axesAsInput ? [tensorBytes('kinfer_cand_axis_0', [1], int64([0])), tensorBytes('kinfer_cand_axis_1', [1], int64([1]))] : []),
    tensorBytes('kinfer_cand_conf', [], Float32Array.of(c.conf)),
    tensorBytes('kinfer_cand_flat', [1], int64([-1])),
  ];
  const [batch, channels] = c.shape;
  const replaced = graphField(12, valueInfo(CANDIDATES_OUTPUT, FLOAT, [batch ?? -1, channels ?? -1, -1]));
  let found = false;
  const parts: Uint8Array[] = [
    ...graphFields(index).map((f) => {
      if (f.field !== 12 || !f.payload || valueInfoName(f.payload) !== c.output) return f.raw;
      found = true;
      return replaced;
    }),
    // After every node of the model: the graph stays in topological order.
    ...nodes.map((node, k) => graphField(1, nodeBytes(node, `kinfer_candidates_${k}`))),
    ...constants.map((t) => graphField(5, t)),
  ];
  if (!found) throw new Error(`the model has no output ${c.output}`);
  return withGraph(index, Buffer.concat(parts));
}
