// Explanations against the reference libraries themselves, on models PyTorch builds and exports
// (test/support/xai-reference.ts): every CAM method against pytorch-grad-cam on the same weights
// at three target layers (the last block, an earlier block whose head holds convolutions and a
// residual shortcut, and a layer inside a block, whose head reads the shortcut from outside),
// attention rollout against the rollout of the same ViT's attention weights in PyTorch, LIME's
// regression against LimeBase.explain_instance_with_data, and exact SHAP against
// shap.KernelExplainer. Tolerances: 1e-4 on the normalised maps, 1e-6 on LIME and SHAP values.
import { mkdtempSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { readOnnxHeader, type XaiMethod } from '../../src/contract/index.ts';
import { openExplainer, planXai, rowsByName } from '../../src/runner/xai/explainer.ts';
import type { XaiGeometry } from '../../src/runner/xai/overlay.ts';
import { allCoalitions, exactShapley, limeFit, limeSamples } from '../../src/runner/xai/perturbation.ts';
import { rng } from '../../src/samples/images.ts';
import { runReference } from '../support/reference-python.ts';
import { XAI_MODELS_SCRIPT } from '../support/xai-reference.ts';

const SIZE = 64;
const IMAGES = 3;
const LAYERS = ['/l3/Relu_1_output_0', '/l2/Relu_1_output_0', '/l3/c1/Conv_output_0'];

interface Reference {
  images: number[][];
  cams: Record<string, Record<string, number[][]>>;
  /** The CAM's largest value before normalisation (not for ScoreCAM). */
  raw_max: Record<string, Record<string, number[]>>;
  rollouts: number[][];
  probs: number[][];
}

let dir: string;
let reference: Reference;

const identity: XaiGeometry = {
  original: { width: SIZE, height: SIZE },
  input: { width: SIZE, height: SIZE },
  toNetwork: (x, y) => [x, y],
  toOriginal: (x, y) => [x, y],
};

async function explainAll(file: string, method: XaiMethod, targetLayer: string | undefined): Promise<Array<Float32Array & { maxActivation?: number }>> {
  const { explainer, session, outputNames, close } = await openExplainer(readFileSync(join(dir, file)), method, {
    targetLayer,
    inputShape: [SIZE, SIZE],
    threads: availableParallelism(),
  });
  try {
    const maps: Array<Float32Array & { maxActivation?: number }> = [];
    for (const image of reference.images) {
      const input = Float32Array.from(image);
      const { outputs } = await session.run(input.slice(), [1, 3, SIZE, SIZE]);
      const rows = rowsByName(outputNames, outputs, 0);
      const probs = rows.get('output0')!.data;
      const targetClass = probs.indexOf(Math.max(...probs));
      const { map, result } = await explainer.explain({ input, outputs: rows, targetClass, classNames: ['a', 'b', 'c', 'd', 'e'], geometry: identity });
      const details = result[method as 'gradcam'];
      maps.push(Object.assign(map, details ? { maxActivation: details.max_activation } : {}));
    }
    return maps;
  } finally {
    await close();
  }
}

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
};

describe('CAM methods identical to pytorch-grad-cam on the same weights', () => {
  beforeAll(() => {
    dir = mkdtempSync(join(process.env.KINFER_TEST_DIR!, 'xai-'));
    reference = runReference(XAI_MODELS_SCRIPT, { dir, size: SIZE, images: IMAGES });
  }, 600_000);

  const cases = (['gradcam', 'hirescam', 'gradcampp', 'scorecam', 'eigencam'] as const).flatMap((m) => LAYERS.map((l) => [m, l] as const));
  it.each(cases)(
    '%s at %s',
    async (method, layer) => {
      const maps = await explainAll('cnn.onnx', method, layer);
      const want = reference.cams[method]![layer]!;
      // Empty where the reference is empty (Grad-CAM of the pre-activation conv here is all negative,
      // hence 0 after its ReLU), with something in them everywhere else...
      const nonEmpty = (m: ArrayLike<number>) => Math.abs(Math.max(...Array.from(m)) - 1) < 1e-4;
      expect(maps.map(nonEmpty)).toEqual(want.map(nonEmpty));
      if (!(method === 'gradcam' && layer === '/l3/c1/Conv_output_0')) expect(maps.every(nonEmpty)).toBe(true);
      maps.forEach((map, i) => {
        expect(map.length).toBe(SIZE * SIZE);
        // ...and the same maps.
        expect({ image: i, diff: maxDiff(map, want[i]!) <= 1e-4 ? 'within 1e-4' : maxDiff(map, want[i]!) }).toEqual({ image: i, diff: 'within 1e-4' });
        // The scale the normalisation hides (a sum where the reference means would show only here).
        const rawMax = reference.raw_max[method]?.[layer]?.[i];
        if (rawMax !== undefined) expect(Math.abs(map.maxActivation! - Math.max(rawMax, 0))).toBeLessThanOrEqual(1e-4 * Math.max(1, Math.abs(rawMax)));
      });
    },
    120_000,
  );

  it('finds the last block as the default target layer', async () => {
    const header = await readOnnxHeader(readFileSync(join(dir, 'cnn.onnx')), { nodes: true });
    expect(planXai(header, 'gradcam', undefined).targetLayer).toBe('/l3/Relu_1_output_0');
  });

  it("attention rollout equals the rollout of the ViT's own attention weights in PyTorch", async () => {
    const maps = await explainAll('vit.onnx', 'attention', undefined);
    maps.forEach((map, i) => expect({ image: i, diff: maxDiff(map, reference.rollouts[i]!) <= 1e-4 }).toEqual({ image: i, diff: true }));
  }, 120_000);

  it('refuses attention on a CNN and gradients through a LayerNorm, naming why', async () => {
    const cnn = await readOnnxHeader(readFileSync(join(dir, 'cnn.onnx')), { nodes: true });
    expect(() => planXai(cnn, 'attention', undefined)).toThrow(/attention rollout needs a vision transformer/);
    expect(() => planXai(cnn, 'gradcam', 'no-such-tensor')).toThrow(/not a tensor of this graph/);
    const vit = await readOnnxHeader(readFileSync(join(dir, 'vit.onnx')), { nodes: true });
    const embed = vit.nodes!.find((n) => n.opType === 'Conv')!.outputs[0]!;
    expect(() => planXai(vit, 'gradcam', embed)).toThrow(/cannot differentiate .*LayerNormalization/);
  });
});

const LIME_SCRIPT = `
import json, sys
import numpy as np
from lime.lime_base import LimeBase
inp = json.load(open(sys.argv[1]))
out = []
for c in inp:
    data = np.array(c['data'], dtype=float); labels = np.array(c['labels'], dtype=float)[:, None]
    # lime_image: cosine distances to the first row x 100, kernel sqrt(exp(-d^2 / 0.25^2)), 100000 features.
    import sklearn.metrics
    distances = sklearn.metrics.pairwise_distances(data, data[0].reshape(1, -1), metric='cosine').ravel() * 100
    base = LimeBase(lambda d: np.sqrt(np.exp(-(d ** 2) / 0.25 ** 2)), verbose=False, random_state=np.random.RandomState(0))
    intercept, exp, score, local = base.explain_instance_with_data(data, labels, distances, 0, 100000, feature_selection='auto')
    weights = dict(exp)
    out.append({'intercept': float(intercept), 'weights': [float(weights[k]) for k in range(data.shape[1])], 'score': float(score), 'local': float(local[0])})
print(json.dumps(out))
`;

const SHAP_SCRIPT = `
import json, sys
import numpy as np, shap
inp = json.load(open(sys.argv[1]))
out = []
for c in inp:
    m = c['m']; table = np.array(c['values'])
    def f(z):
        return np.array([table[int(sum(int(v) << k for k, v in enumerate(row)))] for row in z])
    explainer = shap.KernelExplainer(f, np.zeros((1, m)))
    values = explainer.shap_values(np.ones((1, m)), nsamples=2 ** m, silent=True)
    out.append({'phi': np.asarray(values).reshape(-1).tolist(), 'base': float(np.asarray(explainer.expected_value).reshape(-1)[0])})
print(json.dumps(out))
`;

describe('LIME and SHAP identical to lime and shap on the same samples', () => {
  it("LIME's per-superpixel weights are LimeBase.explain_instance_with_data's", () => {
    const r = rng(3);
    const cases = [12, 40, 50].map((m, k) => {
      const data = limeSamples(m, 1000, r);
      const truth = Array.from({ length: m }, () => r() - 0.3);
      const labels = data.map((s) => Math.min(1, Math.max(0, 0.2 + s.reduce((acc, v, j) => acc + v * truth[j]! * 0.1, 0) + (r() - 0.5) * 0.05 * k)));
      return { data, labels };
    });
    const want = runReference<Array<{ intercept: number; weights: number[]; score: number; local: number }>>(
      LIME_SCRIPT,
      cases.map((c) => ({ data: c.data.map((s) => Array.from(s)), labels: c.labels })),
    );
    cases.forEach((c, i) => {
      const fit = limeFit(c.data, c.labels);
      expect(maxDiff(fit.weights, want[i]!.weights)).toBeLessThanOrEqual(1e-6);
      expect(Math.abs(fit.intercept - want[i]!.intercept)).toBeLessThanOrEqual(1e-6);
      expect(Math.abs(fit.score - want[i]!.score)).toBeLessThanOrEqual(1e-6);
      expect(Math.abs(fit.localPrediction - want[i]!.local)).toBeLessThanOrEqual(1e-6);
    });
  }, 300_000);

  it("exact Shapley values are shap.KernelExplainer's when every coalition is enumerated, with its base value", () => {
    const r = rng(4);
    const cases = [4, 7, 10].map((m) => ({ m, values: allCoalitions(m).map((z) => z.reduce((a, v, k) => a + v * (k + 1) * 0.01, 0) + r() * 0.1) }));
    const want = runReference<Array<{ phi: number[]; base: number }>>(SHAP_SCRIPT, cases);
    cases.forEach((c, i) => {
      expect(maxDiff(exactShapley(c.m, c.values), want[i]!.phi)).toBeLessThanOrEqual(1e-6);
      // The base value is the value of the empty coalition.
      expect(Math.abs(c.values[0]! - want[i]!.base)).toBeLessThanOrEqual(1e-12);
    });
  }, 300_000);
});
