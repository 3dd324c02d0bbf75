// What explanations need to know about a model's graph, read the same way by the controller (to
// refuse a method that does not fit at submit time) and the runner (to build what it runs): the
// layer a CAM method explains by default, the part of the graph between that layer and the output
// (the "head", which gradient methods differentiate), and the attention probabilities of a vision
// transformer. Pure functions over the nodes that readOnnxHeader({ nodes: true }) returns.
import type { GraphNode } from './onnx-header.ts';

/**
 * Operators a head may contain for the gradient methods (gradcam, hirescam, gradcampp): those of
 * the heads of real classifiers (ResNet, VGG, MobileNet, EfficientNet, ConvNeXt-style heads
 * without LayerNorm) from a feature map to the scores.
 */
export const DIFFERENTIABLE_OPS = [
  'Conv',
  'BatchNormalization',
  'Relu',
  'LeakyRelu',
  'Clip',
  'Sigmoid',
  'HardSigmoid',
  'Mul',
  'Add',
  'Sub',
  'Div',
  'GlobalAveragePool',
  'Flatten',
  'Reshape',
  'Squeeze',
  'Unsqueeze',
  'Gemm',
  'MatMul',
  'Softmax',
  'Identity',
  'Dropout',
] as const;

/** Nodes that pool a feature map: the default target layer is what feeds the last of them. */
const POOLING = new Set(['GlobalAveragePool', 'GlobalMaxPool', 'ReduceMean', 'AveragePool', 'MaxPool']);

function producers(nodes: GraphNode[]): Map<string, GraphNode> {
  const by = new Map<string, GraphNode>();
  for (const n of nodes) for (const o of n.outputs) by.set(o, n);
  return by;
}

/** Tensors that hold constants: initializers and Constant nodes' outputs. */
export function constantTensors(nodes: GraphNode[], initializers: ReadonlySet<string>): Set<string> {
  const out = new Set(initializers);
  for (const n of nodes) if (n.opType === 'Constant') for (const o of n.outputs) out.add(o);
  return out;
}

/**
 * The default target layer of a CNN, as pytorch-grad-cam users pick it (ResNet's layer4[-1]): the
 * feature map that the last pooling/flattening step before `output` reads. undefined when there
 * is none (a model without a spatial feature map, or a transformer).
 */
export function defaultTargetLayer(nodes: GraphNode[], output: string): string | undefined {
  // A pooling node if there is one on the way; else what a Flatten reads (a head without pooling).
  return nearest(nodes, output, POOLING) ?? nearest(nodes, output, new Set(['Flatten']));
}

function nearest(nodes: GraphNode[], output: string, ops: ReadonlySet<string>): string | undefined {
  const by = producers(nodes);
  const seen = new Set<string>();
  // Breadth-first from the output backwards: the nearest pooling node wins.
  let frontier = [output];
  while (frontier.length > 0) {
    const next: string[] = [];
    for (const t of frontier) {
      const n = by.get(t);
      if (!n || seen.has(n.name + t)) continue;
      seen.add(n.name + t);
      if (ops.has(n.opType)) return n.inputs[0];
      next.push(...n.inputs);
    }
    frontier = next;
  }
  return undefined;
}

export interface Head {
  /** The nodes from `target` to `output`, in graph order (which ONNX requires to be topological). */
  nodes: GraphNode[];
  /** Tensors the head reads that it does not compute and that are not constants (a residual branch, say). */
  sideInputs: string[];
}

/** The nodes whose outputs depend on `target` and lead to `output`. undefined when `target` does not reach `output`. */
export function headOf(nodes: GraphNode[], target: string, output: string, constants: ReadonlySet<string>): Head | undefined {
  const dependsOnTarget = new Set([target]);
  const forward: GraphNode[] = [];
  for (const n of nodes) {
    if (n.inputs.some((i) => dependsOnTarget.has(i))) {
      forward.push(n);
      for (const o of n.outputs) dependsOnTarget.add(o);
    }
  }
  if (!dependsOnTarget.has(output)) return undefined;
  // Keep what leads to the output.
  const needed = new Set([output]);
  const head: GraphNode[] = [];
  for (const n of [...forward].reverse()) {
    if (n.outputs.some((o) => needed.has(o))) {
      head.unshift(n);
      for (const i of n.inputs) needed.add(i);
    }
  }
  const computed = new Set([target, ...head.flatMap((n) => n.outputs)]);
  const sideInputs = [...new Set(head.flatMap((n) => n.inputs).filter((i) => i !== '' && !computed.has(i) && !constants.has(i)))];
  return { nodes: head, sideInputs };
}

/** Operators of a head that the gradient methods cannot differentiate. */
export function unsupportedOps(head: Head): string[] {
  const ok = new Set<string>(DIFFERENTIABLE_OPS);
  return [...new Set(head.nodes.filter((n) => !ok.has(n.opType) || (n.domain !== '' && n.domain !== 'ai.onnx')).map((n) => n.opType))];
}

/**
 * The attention probabilities of a vision transformer: Softmax nodes that read a MatMul (q . k^T,
 * possibly scaled or masked on the way) and feed a MatMul (the product with v), in graph order.
 */
export function attentionSoftmaxes(nodes: GraphNode[]): string[] {
  const by = producers(nodes);
  const consumers = new Map<string, GraphNode[]>();
  for (const n of nodes) for (const i of n.inputs) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  const readsMatMul = (t: string, depth: number): boolean => {
    const n = by.get(t);
    if (!n || depth > 3) return false;
    if (n.opType === 'MatMul') return true;
    return ['Div', 'Mul', 'Add', 'Cast', 'Where'].includes(n.opType) && n.inputs.some((i) => readsMatMul(i, depth + 1));
  };
  return nodes
    .filter((n) => n.opType === 'Softmax' && readsMatMul(n.inputs[0]!, 0) && (consumers.get(n.outputs[0]!) ?? []).some((c) => c.opType === 'MatMul'))
    .map((n) => n.outputs[0]!);
}

/** Every tensor name the graph computes or reads. */
export function tensorNames(nodes: GraphNode[]): Set<string> {
  const out = new Set<string>();
  for (const n of nodes) for (const t of [...n.inputs, ...n.outputs]) if (t) out.add(t);
  return out;
}
