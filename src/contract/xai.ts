// Explanations (XAI): the methods, their settings as a job asks for them, and what each explained
// image carries. Shared by the REST API, the InferenceJob spec, the runner and the results files.
import { z } from 'zod';

export const XAI_METHODS = ['gradcam', 'hirescam', 'gradcampp', 'scorecam', 'eigencam', 'lime', 'shap', 'attention'] as const;
export const XaiMethod = z.enum(XAI_METHODS);
export type XaiMethod = z.infer<typeof XaiMethod>;

/** Methods that read a convolutional feature map (a target layer). */
export const CAM_METHODS: readonly XaiMethod[] = ['gradcam', 'hirescam', 'gradcampp', 'scorecam', 'eigencam'];
/** Methods that differentiate the graph from the target layer to the output. */
export const GRADIENT_METHODS: readonly XaiMethod[] = ['gradcam', 'hirescam', 'gradcampp'];
/** Methods that explain a class score (classification models). */
export const CLASS_SCORE_METHODS: readonly XaiMethod[] = ['gradcam', 'hirescam', 'gradcampp', 'scorecam', 'lime', 'shap'];

export const XAI_DEFAULTS = {
  numSamples: 1000,
  /** Test runs explain what they got wrong; inference jobs the first images, up to this many. */
  inferenceImages: 'first:1000',
  testRunImages: 'incorrect',
  /** Superpixels of LIME and SHAP (SLIC). */
  superpixels: 50,
} as const;

/** Which images get an explanation: `all`, `incorrect` (test runs) or `first:N` in listing order. */
export const XaiImages = z
  .string()
  .regex(/^(all|incorrect|first:[1-9]\d{0,8})$/, 'must be all, incorrect or first:N')
  .describe('Which images to explain: all, incorrect (test runs) or first:N.');
export type XaiImages = z.infer<typeof XaiImages>;

export const XaiTarget = z.enum(['predicted', 'true']).describe('Explain the predicted class, or the true class (test runs).');
export type XaiTarget = z.infer<typeof XaiTarget>;

/** The method of a job that asks for explanations without naming one: Grad-CAM for classifiers, EigenCAM (gradient-free, what people use on YOLO) otherwise. */
export function defaultXaiMethod(task: string): XaiMethod {
  return task === 'image_classification' ? 'gradcam' : 'eigencam';
}

export type XaiImagePolicy = { kind: 'all' } | { kind: 'incorrect' } | { kind: 'first'; n: number };

export function parseXaiImages(value: string): XaiImagePolicy {
  if (value === 'all' || value === 'incorrect') return { kind: value };
  return { kind: 'first', n: Number(value.slice('first:'.length)) };
}

/** A box in original-image pixels where the map is high, scored by the mean normalised map inside. */
export const XaiRegion = z.object({ x: z.number(), y: z.number(), w: z.number(), h: z.number(), score: z.number() });

const CamDetails = z.object({
  /** [h, w] of the target layer's feature map. */
  activations_shape: z.array(z.number().int()),
  /** The largest value of the CAM before normalisation. */
  max_activation: z.number(),
  top_regions: z.array(XaiRegion),
});

/** What an explained image carries (`xai` of its result; null for the images the job leaves out). */
export const XaiResult = z.object({
  method: XaiMethod,
  /** The ONNX tensor explained (CAM methods), null for the others. */
  target_layer: z.string().nullable(),
  /** The class explained (class-score methods), null otherwise. */
  target_class_id: z.number().int().nonnegative().nullable(),
  target_label: z.string().nullable(),
  /** The overlay (JET heat map over the original image), a storage URI. */
  heatmap_path: z.string(),
  /** The map for programs: float32 [H, W] at the network input's resolution, in [0, 1] (.npy). */
  map_path: z.string(),
  gradcam: CamDetails.optional(),
  hirescam: CamDetails.optional(),
  gradcampp: CamDetails.optional(),
  scorecam: CamDetails.optional(),
  eigencam: CamDetails.optional(),
  lime: z
    .object({
      superpixels: z.number().int(),
      num_samples: z.number().int(),
      /** Per superpixel, the local linear model's weight. */
      importance_scores: z.array(z.number()),
      /** Superpixel ids, most important first (up to 5). */
      top_superpixels: z.array(z.number().int()),
      /** The local model's weighted R^2. */
      score: z.number(),
    })
    .optional(),
  shap: z
    .object({
      /** The score with every superpixel replaced by its mean colour. */
      base_value: z.number(),
      shap_values: z.array(z.number()),
      feature_names: z.array(z.string()),
      /** True when every coalition was evaluated (exact Shapley values). */
      exact: z.boolean(),
    })
    .optional(),
  attention: z.object({ layers: z.number().int(), grid: z.array(z.number().int()) }).optional(),
  /** Faithfulness: target score with the image multiplied by the map, minus the score without (pytorch-grad-cam's CamMultImageConfidenceChange). */
  faithfulness: z.object({ confidence_change: z.number() }).nullable(),
  /** Natural-language explanation, when an OpenAI-compatible endpoint is configured. */
  explanation: z
    .object({
      summary: z.string(),
      key_factors: z.array(z.string()),
      confidence_reasoning: z.string(),
      alternative_considerations: z.string(),
      model: z.string(),
      generated_at: z.string(),
    })
    .optional(),
  /** Problems that did not stop the explanation (an explanation endpoint that failed). */
  warnings: z.array(z.string()).optional(),
});
export type XaiResult = z.infer<typeof XaiResult>;
