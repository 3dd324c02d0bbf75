// Gradients of a model's output with respect to an inner tensor, computed by ONNX Runtime on a
// generated graph: the "head" (the nodes from the target tensor to the output, copied as they are)
// followed by its reverse-mode derivative, written node by node in ONNX operators (a Conv's
// input gradient is a ConvTranspose with the same weights, a Gemm's a Gemm with the weights
// transposed, and so on). The model reads the target tensor, the tensors the head takes from
// elsewhere (a residual branch) and the seed dL/d(output), and returns dL/d(target): with a one-hot
// seed, the gradient of one class's score, which is what pytorch-grad-cam's backward computes.
import type { GraphNode, NodeAttribute } from '../../contract/model/onnx-header.ts';
import type { Head } from '../../contract/model/onnx-graph.ts';
import { buildModel, tensorBytes, tensorDims, valueInfo, type ModelIndex, type NewNode } from './onnx-edit.ts';

export class HeadGradientError extends Error {
  readonly code = 'XAI_UNSUPPORTED_MODEL';
  constructor(message: string) {
    super(message);
    this.name = 'HeadGradientError';
  }
}

export interface HeadGradientSpec {
  index: ModelIndex;
  head: Head;
  target: string;
  output: string;
  /**
   * Every head tensor's shape, from a run that exposed them, with a batch of 2 where the model
   * allows it (so that the batch cannot be mistaken for a broadcast dimension of 1).
   */
  shapes: Map<string, number[]>;
  /** The default-domain opset the model imports. */
  opset: number;
}

export const SEED_INPUT = 'kinfer_xai_seed';
export const GRADIENT_OUTPUT = 'kinfer_xai_gradient';

/** The ONNX model computing d(seed . output)/d(target). */
export function buildHeadGradient(spec: HeadGradientSpec): Uint8Array {
  const { head, target, output, shapes, opset } = spec;
  const nodes: NewNode[] = [];
  const initializers: Uint8Array[] = [];
  let counter = 0;
  const fresh = (base: string) => `kinfer_xai_${base}_${counter++}`;
  const emit = (opType: string, inputs: string[], attributes?: Record<string, NodeAttribute>): string => {
    const out = fresh(opType.toLowerCase());
    nodes.push({ opType, inputs, outputs: [out], ...(attributes ? { attributes } : {}) });
    return out;
  };
  const constant = (values: number[] | Float32Array, dims: number[]): string => {
    const name = fresh('const');
    initializers.push(tensorBytes(name, dims, values instanceof Float32Array ? values : Float32Array.from(values)));
    return name;
  };
  const ints = (values: number[]): string => {
    const name = fresh('ints');
    initializers.push(tensorBytes(name, [values.length], BigInt64Array.from(values.map(BigInt))));
    return name;
  };
  const shapeOf = (t: string): number[] => {
    const s = shapes.get(t);
    if (s) return s;
    const weight = spec.index.initializers.get(t);
    if (weight) return tensorDims(weight);
    throw new HeadGradientError(`no shape known for tensor ${t}`);
  };
  const reduceSum = (x: string, axes: number[], keepdims: boolean): string =>
    opset >= 13
      ? emit('ReduceSum', [x, ints(axes)], { keepdims: { i: keepdims ? 1 : 0 } })
      : emit('ReduceSum', [x], { axes: { ints: axes }, keepdims: { i: keepdims ? 1 : 0 } });
  /** A gradient of broadcast shape `from` summed back to the operand's shape `to`. */
  const unbroadcast = (g: string, from: number[], to: number[]): string => {
    if (from.length === to.length && from.every((d, i) => d === to[i])) return g;
    const lead = from.length - to.length;
    const axes: number[] = [];
    for (let i = 0; i < from.length; i++) if (i < lead || (to[i - lead] === 1 && from[i] !== 1)) axes.push(i);
    const summed = axes.length ? reduceSum(g, axes, true) : g;
    // Reshape's 0 copies the dimension: the batch, whatever its size at run time.
    return emit('Reshape', [summed, ints(to.map((d, i) => (i === 0 && from.length === to.length && d === shapeOf(target)[0] ? 0 : d)))]);
  };

  // Which tensors carry gradient: those computed from the target.
  const live = new Set([target]);
  for (const n of head.nodes) if (n.inputs.some((i) => live.has(i))) for (const o of n.outputs) live.add(o);
  const contributions = new Map<string, string[]>([[output, [SEED_INPUT]]]);
  const add = (t: string, g: string) => {
    if (live.has(t)) contributions.set(t, [...(contributions.get(t) ?? []), g]);
  };
  const gradOf = (t: string): string | undefined => {
    const parts = contributions.get(t);
    if (!parts || parts.length === 0) return undefined;
    if (parts.length === 1) return parts[0];
    const sum = emit('Sum', parts);
    contributions.set(t, [sum]);
    return sum;
  };

  for (const n of [...head.nodes].reverse()) {
    const g = gradOf(n.outputs[0]!);
    if (g === undefined) continue; // does not reach the output through a differentiable path
    backward(n, g);
  }
  const result = gradOf(target);
  if (result === undefined) throw new HeadGradientError(`the output does not depend on ${target}`);
  nodes.push({ opType: 'Identity', inputs: [result], outputs: [GRADIENT_OUTPUT] });

  function backward(n: GraphNode, g: string): void {
    const [x, y] = n.inputs;
    const out = n.outputs[0]!;
    const attr = n.attributes;
    switch (n.opType) {
      case 'Identity':
      case 'Dropout':
        add(x!, g);
        return;
      case 'Relu':
        add(x!, emit('Mul', [g, emit('Cast', [emit('Greater', [x!, constant([0], [])])], { to: { i: 1 } })]));
        return;
      case 'LeakyRelu': {
        const alpha = attr.alpha?.f ?? 0.01;
        add(x!, emit('Where', [emit('Greater', [x!, constant([0], [])]), g, emit('Mul', [g, constant([alpha], [])])]));
        return;
      }
      case 'Clip': {
        // torch's hardtanh backward: the gradient passes strictly inside (min, max).
        const lo = n.inputs[1] || (attr.min?.f !== undefined ? constant([attr.min.f], []) : undefined);
        const hi = n.inputs[2] || (attr.max?.f !== undefined ? constant([attr.max.f], []) : undefined);
        let mask: string | undefined;
        if (lo) mask = emit('Greater', [x!, lo]);
        if (hi) {
          const below = emit('Less', [x!, hi]);
          mask = mask ? emit('And', [mask, below]) : below;
        }
        add(x!, mask ? emit('Mul', [g, emit('Cast', [mask], { to: { i: 1 } })]) : g);
        return;
      }
      case 'Sigmoid':
        add(x!, emit('Mul', [g, emit('Mul', [out, emit('Sub', [constant([1], []), out])])]));
        return;
      case 'HardSigmoid': {
        const alpha = attr.alpha?.f ?? 0.2;
        const beta = attr.beta?.f ?? 0.5;
        const z = emit('Add', [emit('Mul', [x!, constant([alpha], [])]), constant([beta], [])]);
        const inside = emit('And', [emit('Greater', [z, constant([0], [])]), emit('Less', [z, constant([1], [])])]);
        add(x!, emit('Mul', [g, emit('Mul', [emit('Cast', [inside], { to: { i: 1 } }), constant([alpha], [])])]));
        return;
      }
      case 'Add':
      case 'Sub':
      case 'Mul':
      case 'Div': {
        const so = shapeOf(out);
        if (live.has(x!)) {
          const gx = n.opType === 'Mul' ? emit('Mul', [g, y!]) : n.opType === 'Div' ? emit('Div', [g, y!]) : g;
          add(x!, unbroadcast(gx, so, shapeOf(x!)));
        }
        if (live.has(y!)) {
          let gy: string;
          if (n.opType === 'Add') gy = g;
          else if (n.opType === 'Sub') gy = emit('Neg', [g]);
          else if (n.opType === 'Mul') gy = emit('Mul', [g, x!]);
          else gy = emit('Neg', [emit('Div', [emit('Mul', [g, x!]), emit('Mul', [y!, y!])])]);
          add(y!, unbroadcast(gy, so, shapeOf(y!)));
        }
        return;
      }
      case 'GlobalAveragePool': {
        const s = shapeOf(x!);
        const area = s.slice(2).reduce((a, b) => a * b, 1);
        add(x!, emit('Mul', [emit('Expand', [g, emit('Shape', [x!])]), constant([1 / area], [])]));
        return;
      }
      case 'Flatten':
      case 'Reshape':
      case 'Squeeze':
      case 'Unsqueeze':
        add(x!, emit('Reshape', [g, emit('Shape', [x!])]));
        return;
      case 'Gemm': {
        if (live.has(y!) || (n.inputs[2] && live.has(n.inputs[2])))
          throw new HeadGradientError(`Gemm ${n.name}: only its first input may depend on the target layer`);
        if ((attr.transA?.i ?? 0) !== 0) throw new HeadGradientError(`Gemm ${n.name}: transA is not supported`);
        const transB = attr.transB?.i ?? 0;
        add(x!, emit('Gemm', [g, y!], { alpha: { f: attr.alpha?.f ?? 1 }, transB: { i: transB ? 0 : 1 } }));
        return;
      }
      case 'MatMul': {
        const swapLast = (t: string) => {
          const r = shapeOf(t).length;
          return emit('Transpose', [t], { perm: { ints: [...Array.from({ length: r - 2 }, (_, i) => i), r - 1, r - 2] } });
        };
        if (live.has(x!)) add(x!, unbroadcast(emit('MatMul', [g, swapLast(y!)]), [...shapeOf(out).slice(0, -1), shapeOf(x!).at(-1)!], shapeOf(x!)));
        if (live.has(y!))
          add(y!, unbroadcast(emit('MatMul', [swapLast(x!), g]), [...shapeOf(out).slice(0, -2), shapeOf(y!).at(-2)!, shapeOf(out).at(-1)!], shapeOf(y!)));
        return;
      }
      case 'Softmax': {
        const rank = shapeOf(out).length;
        const axis = ((attr.axis?.i ?? (opset >= 13 ? -1 : 1)) + rank) % rank;
        if (opset < 13 && axis !== rank - 1) throw new HeadGradientError(`Softmax ${n.name}: opset ${opset} softmax over axis ${axis} of ${rank}`);
        const dot = reduceSum(emit('Mul', [g, out]), [axis], true);
        add(x!, emit('Mul', [out, emit('Sub', [g, dot])]));
        return;
      }
      case 'BatchNormalization': {
        const [, scale, , , variance] = n.inputs;
        const eps = attr.epsilon?.f ?? 1e-5;
        const perChannel = emit('Div', [scale!, emit('Sqrt', [emit('Add', [variance!, constant([eps], [])])])]);
        const rank = shapeOf(x!).length;
        const shaped = emit('Reshape', [perChannel, ints([-1, ...Array.from({ length: rank - 2 }, () => 1)])]);
        add(x!, emit('Mul', [g, shaped]));
        return;
      }
      case 'Conv': {
        if (live.has(y!)) throw new HeadGradientError(`Conv ${n.name}: its weights depend on the target layer`);
        const xs = shapeOf(x!);
        const ys = shapeOf(out);
        const w = n.inputs[1]!;
        const spatial = xs.length - 2;
        const ws = shapeOf(w);
        const kernel = attr.kernel_shape?.ints ?? ws.slice(2);
        const strides = attr.strides?.ints ?? new Array<number>(spatial).fill(1);
        const dilations = attr.dilations?.ints ?? new Array<number>(spatial).fill(1);
        let pads = attr.pads?.ints ?? new Array<number>(2 * spatial).fill(0);
        const autoPad = attr.auto_pad?.s ?? 'NOTSET';
        if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
          pads = new Array<number>(2 * spatial).fill(0);
          for (let i = 0; i < spatial; i++) {
            const total = Math.max((ys[2 + i]! - 1) * strides[i]! + dilations[i]! * (kernel[i]! - 1) + 1 - xs[2 + i]!, 0);
            const small = Math.floor(total / 2);
            pads[i] = autoPad === 'SAME_UPPER' ? small : total - small;
            pads[spatial + i] = total - pads[i]!;
          }
        } else if (autoPad === 'VALID') pads = new Array<number>(2 * spatial).fill(0);
        const outputPadding = Array.from(
          { length: spatial },
          (_, i) => xs[2 + i]! - ((ys[2 + i]! - 1) * strides[i]! - pads[i]! - pads[spatial + i]! + dilations[i]! * (kernel[i]! - 1) + 1),
        );
        add(
          x!,
          emit('ConvTranspose', [g, w], {
            kernel_shape: { ints: kernel },
            strides: { ints: strides },
            dilations: { ints: dilations },
            pads: { ints: pads },
            group: { i: attr.group?.i ?? 1 },
            output_padding: { ints: outputPadding },
          }),
        );
        return;
      }
      default:
        throw new HeadGradientError(`cannot differentiate ${n.opType} (node ${n.name || out})`);
    }
  }

  const targetShape = shapeOf(target);
  const headNodeBytes = spec.index.nodes.filter((raw) => head.nodes.some((n) => n.outputs[0] === raw.outputs[0])).map((raw) => raw.bytes);
  const usedInitializers = new Set(head.nodes.flatMap((n) => n.inputs));
  const copied = [...spec.index.initializers].filter(([name]) => usedInitializers.has(name)).map(([, raw]) => raw);
  const batchless = (s: number[]) => [-1, ...s.slice(1)];
  return buildModel({
    irVersion: Math.max(spec.index.irVersion, 7),
    opsetImports: spec.index.opsetImports,
    nodes: [...headNodeBytes, ...nodes],
    initializers: [...copied, ...initializers],
    inputs: [
      valueInfo(target, 1, batchless(targetShape)),
      ...head.sideInputs.map((s) => valueInfo(s, 1, batchless(shapeOf(s)))),
      valueInfo(SEED_INPUT, 1, batchless(shapeOf(output))),
    ],
    outputs: [valueInfo(GRADIENT_OUTPUT, 1, batchless(targetShape))],
  });
}
