// Explains images for a job: plans what the model must expose (the target layer and what its head
// reads, or a transformer's attention probabilities), builds the head's gradient model, and for
// each chosen image computes the method's map, its details, its faithfulness, the overlay and the
// .npy, and an optional natural-language explanation.
import {
  CLASS_SCORE_METHODS,
  planXai,
  readOnnxHeader,
  XaiConfigError,
  type OnnxHeader,
  type XaiImagePolicy,
  type XaiMethod,
  type XaiPlan,
  type XaiResult,
} from '../../contract/index.ts';
import { WorkerSession } from '../inference/inference-session.ts';
import type { WorkerOutput } from '../inference/worker-protocol.ts';
import { eigenProjection, finishCam, gradcamppWeights, gradcamWeights, hirescam, scaleCam, upsampleAlignCorners, weightedSum, type FeatureMap } from './cam.ts';
import { buildHeadGradient, GRADIENT_OUTPUT, SEED_INPUT } from './head-gradient.ts';
import { indexModel, withOutputs, type ModelIndex } from './onnx-edit.ts';
import { npy, overlay, topRegions, type XaiGeometry } from './overlay.ts';
import { allCoalitions, exactShapley, kernelShapFit, kernelShapSamples, limeFit, limeSamples, perturber } from './perturbation.ts';
import { slic } from './superpixels.ts';

/** The model bytes the job's session runs: the original with the plan's tensors exposed. */
export function modelForPlan(bytes: Uint8Array, plan: XaiPlan): { bytes: Uint8Array; index: ModelIndex } {
  const index = indexModel(bytes);
  return { bytes: plan.extraOutputs.length ? withOutputs(index, plan.extraOutputs) : bytes, index };
}

export interface XaiSettings {
  method: XaiMethod;
  numSamples: number;
  images: XaiImagePolicy;
  target: 'predicted' | 'true';
  llm: { baseUrl: string; model: string; apiKey: string | undefined } | undefined;
}

export interface ExplainInput {
  /** The image's network input, CHW. */
  input: Float32Array;
  /** This image's row of every output of the batch, by name. */
  outputs: Map<string, { data: Float32Array; dims: number[] }>;
  /** Class to explain (class-score methods); undefined for the others. */
  targetClass: number | undefined;
  classNames: string[];
  geometry: XaiGeometry;
  /** Cancellation: checked between the model runs a perturbation method makes. */
  signal?: AbortSignal | undefined;
}

export interface ExplainOutput {
  map: Float32Array;
  result: Omit<XaiResult, 'heatmap_path' | 'map_path'>;
}

/** Row `row` of each output, by name. */
export function rowsByName(names: string[], outputs: WorkerOutput[], row: number): Map<string, { data: Float32Array; dims: number[] }> {
  const out = new Map<string, { data: Float32Array; dims: number[] }>();
  outputs.forEach((o, i) => {
    const per = o.dims.slice(1).reduce((a, b) => a * b, 1);
    out.set(names[i]!, { data: new Float32Array(o.data, row * per * 4, per), dims: [1, ...o.dims.slice(1)] });
  });
  return out;
}

export class Explainer {
  readonly plan: XaiPlan;
  readonly settings: XaiSettings;
  readonly #session: WorkerSession;
  readonly #outputNames: string[];
  readonly #gradient: WorkerSession | undefined;
  readonly #inputShape: [number, number];
  #chosen = 0;

  private constructor(
    plan: XaiPlan,
    settings: XaiSettings,
    session: WorkerSession,
    outputNames: string[],
    gradient: WorkerSession | undefined,
    inputShape: [number, number],
  ) {
    this.plan = plan;
    this.settings = settings;
    this.#session = session;
    this.#outputNames = outputNames;
    this.#gradient = gradient;
    this.#inputShape = inputShape;
  }

  /**
   * For the gradient methods, probes the head's shapes with a run of zeros (a batch of 2 where
   * the model allows it) and opens a session on the head's gradient model.
   */
  static async create(o: {
    plan: XaiPlan;
    settings: XaiSettings;
    session: WorkerSession;
    outputNames: string[];
    index: ModelIndex;
    header: OnnxHeader;
    inputShape: [number, number];
    fixedBatch: number | undefined;
    openSession: (bytes: Uint8Array) => Promise<WorkerSession>;
  }): Promise<Explainer> {
    let gradient: WorkerSession | undefined;
    if (o.plan.head) {
      const batch = o.fixedBatch ?? 2;
      const [h, w] = o.inputShape;
      const probe = await o.session.run(new Float32Array(batch * 3 * h * w), [batch, 3, h, w]);
      const shapes = new Map(probe.outputs.map((out, i) => [o.outputNames[i]!, out.dims]));
      const opset = opsetOf(o.index);
      const bytes = buildHeadGradient({ index: o.index, head: o.plan.head, target: o.plan.targetLayer!, output: o.header.outputs[0]!.name, shapes, opset });
      gradient = await o.openSession(bytes);
    }
    return new Explainer(o.plan, o.settings, o.session, o.outputNames, gradient, o.inputShape);
  }

  /** Whether this image gets an explanation (call once per image, in listing order). */
  wants(isCorrect: boolean | null | undefined): boolean {
    const p = this.settings.images;
    if (p.kind === 'incorrect' && isCorrect !== false) return false;
    if (p.kind === 'first' && this.#chosen >= p.n) return false;
    this.#chosen++;
    return true;
  }

  /** The target score of each input (a batch of CHW tensors), from the model's first output. */
  async #scores(inputs: Float32Array[], target: number, signal?: AbortSignal): Promise<number[]> {
    const [h, w] = this.#inputShape;
    const plane = 3 * h * w;
    const out: number[] = [];
    const batch = 16;
    for (let i = 0; i < inputs.length; i += batch) {
      signal?.throwIfAborted();
      const part = inputs.slice(i, i + batch);
      const data = new Float32Array(part.length * plane);
      part.forEach((t, k) => data.set(t, k * plane));
      const { outputs } = await this.#session.run(data, [part.length, 3, h, w]);
      const first = outputs[0]!;
      const per = first.dims.slice(1).reduce((a, b) => a * b, 1);
      const view = new Float32Array(first.data);
      for (let k = 0; k < part.length; k++) out.push(view[k * per + target]!);
    }
    return out;
  }

  async explain(x: ExplainInput): Promise<ExplainOutput> {
    const { method } = this.plan;
    const [h, w] = this.#inputShape;
    const size = { width: w, height: h };
    const base = {
      method,
      target_layer: this.plan.targetLayer ?? null,
      target_class_id: CLASS_SCORE_METHODS.includes(method) ? (x.targetClass ?? null) : null,
      target_label: CLASS_SCORE_METHODS.includes(method) && x.targetClass !== undefined ? (x.classNames[x.targetClass] ?? null) : null,
    };
    let map: Float32Array;
    let details: Partial<XaiResult> = {};
    if (this.plan.targetLayer) {
      const a = x.outputs.get(this.plan.targetLayer);
      if (!a || a.dims.length !== 4)
        throw new XaiConfigError(`target layer ${this.plan.targetLayer} is not a 4-D feature map (shape ${JSON.stringify(a?.dims)})`);
      const activations: FeatureMap = { data: a.data, channels: a.dims[1]!, height: a.dims[2]!, width: a.dims[3]! };
      let raw: Float64Array;
      if (method === 'eigencam') raw = eigenProjection(activations);
      else if (method === 'scorecam') raw = weightedSum(await this.#scoreCamWeights(x, activations), activations);
      else {
        const grads = await this.#gradients(x, activations);
        raw =
          method === 'hirescam'
            ? hirescam(grads, activations)
            : weightedSum(method === 'gradcampp' ? gradcamppWeights(grads, activations) : gradcamWeights(grads), activations);
      }
      map = finishCam(raw, activations.width, activations.height, size);
      let max = 0;
      for (const v of raw) max = Math.max(max, v);
      details = { [method]: { activations_shape: [activations.height, activations.width], max_activation: max, top_regions: topRegions(map, x.geometry) } };
    } else if (method === 'attention') {
      const rollout = attentionRollout(this.plan.attention.map((name) => x.outputs.get(name)!));
      map = finishCam(rollout.mask, rollout.side, rollout.side, size);
      details = { attention: { layers: this.plan.attention.length, grid: [rollout.side, rollout.side] } };
    } else {
      ({ map, details } = await this.#perturbation(x, size));
    }
    const faithfulness =
      x.targetClass !== undefined && CLASS_SCORE_METHODS.includes(method) ? { confidence_change: await this.#confidenceChange(x, map) } : null;
    return { map, result: { ...base, ...details, faithfulness } };
  }

  async #gradients(x: ExplainInput, activations: FeatureMap): Promise<FeatureMap> {
    const first = x.outputs.get(this.#outputNames[0]!)!;
    const seed = new Float32Array(first.data.length);
    seed[x.targetClass!] = 1;
    const inputs = [
      { name: this.plan.targetLayer!, data: activations.data, dims: [1, activations.channels, activations.height, activations.width] },
      ...this.plan.head!.sideInputs.map((name) => ({ name, ...x.outputs.get(name)! })),
      { name: SEED_INPUT, data: seed, dims: first.dims },
    ];
    const { outputs } = await this.#gradient!.runNamed(inputs);
    const g = outputs.find((o) => o.name === GRADIENT_OUTPUT)!;
    return { ...activations, data: new Float32Array(g.data) };
  }

  /** ScoreCAM.get_cam_weights: each channel, upsampled (align_corners) and min-max normalised, masks the input; softmax of the target scores. */
  async #scoreCamWeights(x: ExplainInput, a: FeatureMap): Promise<Float64Array> {
    const [h, w] = this.#inputShape;
    const plane = h * w;
    const masked: Float32Array[] = [];
    for (let c = 0; c < a.channels; c++) {
      const up = upsampleAlignCorners(a.data.subarray(c * a.height * a.width, (c + 1) * a.height * a.width), a.width, a.height, w, h);
      let lo = Infinity;
      let hi = -Infinity;
      for (const v of up) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
      const t = new Float32Array(3 * plane);
      for (let i = 0; i < plane; i++) {
        const m = (up[i]! - lo) / (hi - lo + 1e-8);
        for (let ch = 0; ch < 3; ch++) t[ch * plane + i] = x.input[ch * plane + i]! * m;
      }
      masked.push(t);
    }
    const scores = await this.#scores(masked, x.targetClass!, x.signal);
    const max = Math.max(...scores);
    const e = scores.map((s) => Math.exp(s - max));
    const sum = e.reduce((p, q) => p + q, 0);
    return Float64Array.from(e, (v) => v / sum);
  }

  async #perturbation(x: ExplainInput, size: { width: number; height: number }): Promise<{ map: Float32Array; details: Partial<XaiResult> }> {
    const { width, height } = size;
    const plane = width * height;
    // Segment what the network sees: its input back to bytes (any per-channel affine normalisation keeps SLIC's regions).
    const rgb = new Uint8Array(plane * 3);
    for (let c = 0; c < 3; c++) {
      let lo = Infinity;
      let hi = -Infinity;
      for (let i = 0; i < plane; i++) {
        lo = Math.min(lo, x.input[c * plane + i]!);
        hi = Math.max(hi, x.input[c * plane + i]!);
      }
      for (let i = 0; i < plane; i++) rgb[i * 3 + c] = hi > lo ? Math.round((255 * (x.input[c * plane + i]! - lo)) / (hi - lo)) : 0;
    }
    const seg = slic(rgb, width, height, { segments: this.settings.method === 'shap' ? 10 : 50 });
    const perturb = perturber(x.input, seg);
    const random = mulberry32(0x6b696e66 ^ seg.count);
    const m = seg.count;
    const target = x.targetClass!;
    const toMap = (weights: number[]) => {
      const values = Float32Array.from({ length: plane }, (_, i) => weights[seg.labels[i]!]!);
      return scaleCam(
        values.map((v) => Math.max(v, 0)),
        width,
        height,
      );
    };
    if (this.settings.method === 'lime') {
      const samples = limeSamples(m, this.settings.numSamples, random);
      const labels = await this.#scores(
        samples.map((s) => perturb(s)),
        target,
        x.signal,
      );
      const fit = limeFit(samples, labels);
      const top = fit.weights
        .map((v, k) => [k, v] as const)
        .sort((p, q) => Math.abs(q[1]) - Math.abs(p[1]))
        .slice(0, 5)
        .map(([k]) => k);
      return {
        map: toMap(fit.weights),
        details: { lime: { superpixels: m, num_samples: samples.length, importance_scores: fit.weights, top_superpixels: top, score: fit.score } },
      };
    }
    // SHAP: every coalition when they fit in num_samples, else KernelSHAP sampling.
    const exact = 2 ** m <= this.settings.numSamples + 2;
    let phi: number[];
    let baseValue: number;
    if (exact) {
      const coalitions = allCoalitions(m);
      const values = await this.#scores(
        coalitions.map((z) => perturb(z)),
        target,
        x.signal,
      );
      phi = exactShapley(m, values);
      baseValue = values[0]!;
    } else {
      const samples = kernelShapSamples(m, this.settings.numSamples, random);
      const [none, all] = await this.#scores([perturb(new Uint8Array(m)), perturb(new Uint8Array(m).fill(1))], target);
      const values = await this.#scores(
        samples.map((z) => perturb(z)),
        target,
        x.signal,
      );
      phi = kernelShapFit(samples, values, none!, all!);
      baseValue = none!;
    }
    return {
      map: toMap(phi),
      details: { shap: { base_value: baseValue, shap_values: phi, feature_names: phi.map((_, k) => `superpixel_${k}`), exact } },
    };
  }

  /** CamMultImageConfidenceChange: the target score of input x map, minus the score of the input. */
  async #confidenceChange(x: ExplainInput, map: Float32Array): Promise<number> {
    const plane = map.length;
    const scaled = new Float32Array(x.input.length);
    for (let c = 0; c < x.input.length / plane; c++) for (let i = 0, k = c * plane; i < plane; i++, k++) scaled[k] = x.input[k]! * map[i]!;
    const first = x.outputs.get(this.#outputNames[0]!)!;
    const [after] = await this.#scores([scaled], x.targetClass!);
    return after! - first.data[x.targetClass!]!;
  }

  async close(): Promise<void> {
    await this.#gradient?.close();
  }
}

function opsetOf(index: ModelIndex): number {
  let version = 17;
  for (const raw of index.opsetImports) {
    let domain = '';
    let v = 0;
    let pos = 0;
    while (pos < raw.length) {
      const tag = raw[pos++]!;
      if (tag === 0x0a) {
        const len = raw[pos++]!;
        domain = new TextDecoder().decode(raw.subarray(pos, pos + len));
        pos += len;
      } else if (tag === 0x10) {
        let shift = 0;
        v = 0;
        for (;;) {
          const b = raw[pos++]!;
          v += (b & 0x7f) * 2 ** shift;
          shift += 7;
          if (!(b & 0x80)) break;
        }
      } else break;
    }
    if (domain === '' || domain === 'ai.onnx') version = v;
  }
  return version;
}

/**
 * Attention rollout (Abnar & Zuidema, 2020): per layer the heads' mean, plus the identity, rows
 * renormalised; the product over the layers; the class token's row over the patch tokens, on
 * the patch grid.
 */
export function attentionRollout(layers: Array<{ data: Float32Array; dims: number[] }>): { mask: Float64Array; side: number } {
  const [, heads, tokens] = layers[0]!.dims as [number, number, number, number];
  let result = new Float64Array(tokens * tokens);
  for (let i = 0; i < tokens; i++) result[i * tokens + i] = 1;
  for (const layer of layers) {
    const a = new Float64Array(tokens * tokens);
    for (let hd = 0; hd < heads; hd++) for (let i = 0; i < tokens * tokens; i++) a[i]! += layer.data[hd * tokens * tokens + i]! / heads;
    for (let i = 0; i < tokens; i++) {
      a[i * tokens + i]! += 1;
      let s = 0;
      for (let j = 0; j < tokens; j++) s += a[i * tokens + j]!;
      for (let j = 0; j < tokens; j++) a[i * tokens + j]! /= s;
    }
    const next = new Float64Array(tokens * tokens);
    for (let i = 0; i < tokens; i++)
      for (let k = 0; k < tokens; k++) {
        const v = a[i * tokens + k]!;
        if (v === 0) continue;
        for (let j = 0; j < tokens; j++) next[i * tokens + j]! += v * result[k * tokens + j]!;
      }
    result = next;
  }
  const side = Math.round(Math.sqrt(tokens - 1));
  return { mask: result.subarray(1, tokens), side };
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/**
 * An explainer on its own session, for one method (the benchmarks, the gallery, the reference
 * tests; a job builds its explainer from the model it loaded instead).
 */
export async function openExplainer(
  model: Uint8Array,
  method: XaiMethod,
  o: { targetLayer?: string | undefined; inputShape: [number, number]; numSamples?: number; threads: number },
): Promise<{ explainer: Explainer; session: WorkerSession; outputNames: string[]; close: () => Promise<void> }> {
  const header = await readOnnxHeader(model, { nodes: true });
  const plan = planXai(header, method, o.targetLayer);
  const { bytes, index } = modelForPlan(model, plan);
  const sessionOptions = { executionProviders: ['cpu'], intraOpNumThreads: o.threads };
  const { session, info } = await WorkerSession.open(bytes, sessionOptions);
  try {
    const explainer = await Explainer.create({
      plan,
      settings: { method, numSamples: o.numSamples ?? 1000, images: { kind: 'all' }, target: 'predicted', llm: undefined },
      session,
      outputNames: info.outputNames,
      index,
      header,
      inputShape: o.inputShape,
      fixedBatch: undefined,
      openSession: async (b) => (await WorkerSession.open(b, sessionOptions)).session,
    });
    return {
      explainer,
      session,
      outputNames: info.outputNames,
      close: async () => {
        await explainer.close();
        await session.close();
      },
    };
  } catch (err) {
    await session.close();
    throw err;
  }
}

export { npy, overlay };
export { planXai };
