// A model that takes the decoded image as it comes out of the decoder: uint8 RGB, NHWC. A few
// nodes put in front of the graph do what the runner did in JavaScript per image (HWC -> CHW,
// ToTensor's /255, Normalize's (x - mean) / std, in float32 and in that order, so the values are
// the same bit for bit), inside the session and on its device. The main thread then hands over a
// quarter of the bytes and converts nothing (issue 16: the conversion cost ~7.5 ms a 640x640
// image, and its 5 MB Float32Arrays most of the garbage collection). On the CPU the session's
// worker converts instead, just before the run (inference/planar-float.ts), and the model is not
// edited: the same values, at 40% of the CPU and without parallel sections of ONNX Runtime's.
import { FLOAT, graphField, graphFields, indexModel, nodeBytes, tensorBytes, valueInfo, valueInfoName, withGraph, type NewNode } from '../xai/onnx-edit.ts';

const UINT8 = 2;
/** The input the edited model takes instead of the float one. */
export const UINT8_INPUT = 'kinfer_uint8_nhwc';

export type Uint8ConversionSite = 'worker' | 'graph';

/**
 * Where a session's uint8 input becomes the model's float input. `worker`: the session's worker
 * converts each batch before its run (planar-float.ts), for sessions on the CPU alone, where the
 * nodes' three passes cost ONNX Runtime's threads 1.0 ms of CPU a 640x640 image against the
 * worker's 0.4 (2026-12-04, docs/scaling.md). `graph`: nodes put in front of the model convert it
 * on the session's device (withUint8Input), which then receives a quarter of the bytes.
 */
export function uint8ConversionSite(executionProviders: readonly string[]): Uint8ConversionSite {
  return executionProviders.every((p) => p === 'cpu') ? 'worker' : 'graph';
}

export interface Normalization {
  mean: [number, number, number];
  std: [number, number, number];
}

/** Mean 0 and std 1 (Ultralytics' models): x / 255 alone. */
export function isUnitNormalization(norm: Normalization): boolean {
  return norm.mean.every((m) => m === 0) && norm.std.every((s) => s === 1);
}

/**
 * The model with its float NCHW input `input` (shape `[n, 3, h, w]`, -1 dynamic) replaced by a
 * uint8 NHWC input, converted in the graph. Nothing else of the model changes.
 */
export function withUint8Input(bytes: Uint8Array, input: string, shape: number[], norm: Normalization): Uint8Array {
  const index = indexModel(bytes);
  const [n, , h, w] = shape;
  const identity = isUnitNormalization(norm);
  const nodes: NewNode[] = [
    { opType: 'Transpose', inputs: [UINT8_INPUT], outputs: ['kinfer_pre_nchw'], attributes: { perm: { ints: [0, 3, 1, 2] } } },
    { opType: 'Cast', inputs: ['kinfer_pre_nchw'], outputs: ['kinfer_pre_float'], attributes: { to: { i: FLOAT } } },
    { opType: 'Div', inputs: ['kinfer_pre_float', 'kinfer_pre_255'], outputs: [identity ? input : 'kinfer_pre_unit'] },
    ...(identity
      ? []
      : [
          { opType: 'Sub', inputs: ['kinfer_pre_unit', 'kinfer_pre_mean'], outputs: ['kinfer_pre_centred'] },
          { opType: 'Div', inputs: ['kinfer_pre_centred', 'kinfer_pre_std'], outputs: [input] },
        ]),
  ];
  const constants = [
    tensorBytes('kinfer_pre_255', [], Float32Array.of(255)),
    ...(identity
      ? []
      : [tensorBytes('kinfer_pre_mean', [1, 3, 1, 1], Float32Array.from(norm.mean)), tensorBytes('kinfer_pre_std', [1, 3, 1, 1], Float32Array.from(norm.std))]),
  ];
  const parts: Uint8Array[] = [
    // The new nodes first: the graph stays in topological order.
    ...nodes.map((node, k) => graphField(1, nodeBytes(node, `kinfer_preprocess_${k}`))),
    ...graphFields(index)
      // The float input is now computed by the nodes above.
      .filter((f) => !(f.field === 11 && f.payload && valueInfoName(f.payload) === input))
      .map((f) => f.raw),
    ...constants.map((t) => graphField(5, t)),
    graphField(11, valueInfo(UINT8_INPUT, UINT8, [n ?? -1, h ?? -1, w ?? -1, 3])),
  ];
  return withGraph(index, Buffer.concat(parts));
}
