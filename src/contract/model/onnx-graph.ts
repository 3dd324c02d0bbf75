// What explanations need to know about a model's graph, read the same way by the controller (to
// refuse a method that does not fit at submit time) and the runner (to build what it runs): the
// layer a CAM method explains by default, the part of the graph between that layer and the output
// (the "head", which gradient methods differentiate), and the attention probabilities of a vision
// transformer. Pure functions over the nodes that readOnnxHeader({ nodes: true }) returns.
import { GRADIENT_METHODS, type XaiMethod } from '../xai.ts';
import type { GraphNode, OnnxHeader } from './onnx-header.ts';

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

export class XaiConfigError extends Error {
  readonly code = 'XAI_UNSUPPORTED_MODEL';
  /** The request field at fault. */
  readonly field: 'xai_method' | 'xai_config.target_layer';
  constructor(message: string, field: 'xai_method' | 'xai_config.target_layer' = 'xai_method') {
    super(message);
    this.name = 'XaiConfigError';
    this.field = field;
  }
}

export interface XaiPlan {
  method: XaiMethod;
  /** The explained tensor (CAM methods). */
  targetLayer: string | undefined;
  head: Head | undefined;
  /** Attention probabilities, in graph order (attention). */
  attention: string[];
  /** Tensors the session must return besides the model's own outputs. */
  extraOutputs: string[];
}

/**
 * What `method` needs from this graph, or why it cannot explain it (XaiConfigError, with the
 * reason): the controller runs it at submit time on the header it reads, the runner to build what
 * it runs.
 */
export function planXai(header: OnnxHeader, method: XaiMethod, targetLayer: string | undefined): XaiPlan {
  const nodes: GraphNode[] = header.nodes ?? [];
  const output = header.outputs[0]!.name;
  const outputs = new Set(header.outputs.map((o) => o.name));
  const expose = (names: string[]) => [...new Set(names)].filter((n) => !outputs.has(n));
  if (method === 'lime' || method === 'shap') return { method, targetLayer: undefined, head: undefined, attention: [], extraOutputs: [] };
  if (method === 'attention') {
    const attention = attentionSoftmaxes(nodes);
    if (attention.length === 0)
      throw new XaiConfigError('attention rollout needs a vision transformer: no attention softmax (MatMul -> Softmax -> MatMul) in this graph');
    return { method, targetLayer: undefined, head: undefined, attention, extraOutputs: expose(attention) };
  }
  const target = targetLayer ?? defaultTargetLayer(nodes, output);
  if (!target) throw new XaiConfigError(`${method} needs a target layer: this graph has no pooling before its output, name one in xai_config.target_layer`);
  const layerField = targetLayer ? 'xai_config.target_layer' : 'xai_method';
  if (!nodes.some((n) => n.outputs.includes(target)) && !header.inputs.some((i) => i.name === target))
    throw new XaiConfigError(`target layer ${target} is not a tensor of this graph`, layerField);
  if (!GRADIENT_METHODS.includes(method)) return { method, targetLayer: target, head: undefined, attention: [], extraOutputs: expose([target]) };
  const head = headOf(nodes, target, output, constantTensors(nodes, header.initializerNames ?? new Set()));
  if (!head) throw new XaiConfigError(`the output ${output} does not depend on target layer ${target}`, layerField);
  const unsupported = unsupportedOps(head);
  if (unsupported.length)
    throw new XaiConfigError(
      `${method} cannot differentiate ${unsupported.join(', ')} between ${target} and the output; choose a later target layer`,
      layerField,
    );
  return { method, targetLayer: target, head, attention: [], extraOutputs: expose([target, ...head.sideInputs, ...head.nodes.flatMap((n) => n.outputs)]) };
}
