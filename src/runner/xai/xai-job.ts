// Explanations inside a job: which images, which class, the files (overlay .jpg and map .npy under
// `{artifacts}/xai/`, named after the image's path in the dataset), the `xai` object of the image's
// result, the run's faithfulness summary, and the optional natural-language explanation (an
// OpenAI-compatible endpoint; a failure is a warning on that image, never a failed job).
import type { Logger } from 'pino';
import { ARTIFACT_NAMES, joinStorageUri, type ImageResult, type XaiResult } from '../../contract/index.ts';
import type { BackgroundWrites } from '../io/background-writes.ts';
import type { ObjectStore } from '../io/object-store.ts';
import type { WorkerOutput } from '../inference/worker-protocol.ts';
import type { TaskFields } from '../tasks/vision-task.ts';
import { rowsByName, type Explainer } from './explainer.ts';
import { npy, overlay, type XaiGeometry } from './overlay.ts';

/** `images/cats/a.jpg` -> `images/cats/a`; a URI (an inference job's list) -> its file name without extension. */
export function xaiStem(name: string): string {
  const rel = /^[a-z][a-z0-9+.-]*:\/\//i.test(name) || name.startsWith('/') ? name.slice(name.lastIndexOf('/') + 1) : name;
  return rel.replace(/\.[^./]+$/, '');
}

export interface XaiJobOptions {
  explainer: Explainer;
  store: ObjectStore;
  artifactsUri: string;
  writes: BackgroundWrites;
  classNames: string[];
  outputNames: string[];
  log: Logger;
  /** Test runs may explain the true class. */
  testRun: boolean;
}

export class XaiJob {
  readonly #o: XaiJobOptions;

  constructor(o: XaiJobOptions) {
    this.#o = o;
  }

  /** The explanation of one image, or null when the job leaves it out. */
  async explain(x: {
    name: string;
    bytes: Uint8Array;
    input: Float32Array;
    outputs: WorkerOutput[];
    row: number;
    fields: TaskFields;
    geometry: XaiGeometry;
    signal?: AbortSignal | undefined;
  }): Promise<XaiResult | null> {
    const { explainer, store, artifactsUri, writes } = this.#o;
    if (!explainer.wants(x.fields.is_correct)) return null;
    const { method } = explainer.plan;
    const target =
      explainer.settings.target === 'true' && this.#o.testRun && x.fields.true_class_id != null
        ? x.fields.true_class_id
        : (x.fields.predicted_class_id ?? undefined);
    const classification = x.fields.detections === undefined && x.fields.mask_path === undefined;
    const { map, result } = await explainer.explain({
      input: x.input,
      outputs: rowsByName(this.#o.outputNames, x.outputs, x.row),
      targetClass: classification ? target : undefined,
      classNames: this.#o.classNames,
      geometry: x.geometry,
      signal: x.signal,
    });
    const stem = xaiStem(x.name);
    const heatmapPath = joinStorageUri(artifactsUri, ARTIFACT_NAMES.xai, `${stem}_${method}.jpg`);
    const mapPath = joinStorageUri(artifactsUri, ARTIFACT_NAMES.xai, `${stem}_${method}.npy`);
    const picture = await overlay(x.bytes, map, x.geometry);
    await writes.add(heatmapPath, () => store.write(heatmapPath, picture, 'image/jpeg'));
    const file = npy(map, [x.geometry.input.height, x.geometry.input.width]);
    await writes.add(mapPath, () => store.write(mapPath, Buffer.from(file), 'application/octet-stream'));
    const out: XaiResult = { ...result, heatmap_path: heatmapPath, map_path: mapPath };
    const llm = explainer.settings.llm;
    if (llm) {
      try {
        out.explanation = await explainInWords(llm, facts(out, x.fields, this.#o.classNames));
      } catch (err) {
        out.warnings = [`natural-language explanation unavailable: ${(err as Error).message.slice(0, 300)}`];
        this.#o.log.warn({ err: (err as Error).message, image: x.name }, 'natural-language explanation failed');
      }
    }
    return out;
  }

  async close(): Promise<void> {
    await this.#o.explainer.close();
  }
}

/** The run's explanations summed up from its images' results (test runs add it to their metrics). */
export class XaiSummary {
  #explained = 0;
  #changes = 0;
  #changeSum = 0;

  add(result: ImageResult): void {
    if (!result.xai) return;
    this.#explained++;
    if (result.xai.faithfulness) {
      this.#changes++;
      this.#changeSum += result.xai.faithfulness.confidence_change;
    }
  }

  summary(): Record<string, number | null> {
    return {
      'xai/explained_images': this.#explained,
      'xai/mean_confidence_change': this.#changes ? this.#changeSum / this.#changes : null,
    };
  }
}

/** What a language model may say anything about: the prediction, the runner-up, where the map is high. */
function facts(xai: XaiResult, fields: TaskFields, classNames: string[]): Record<string, unknown> {
  const ranked = fields.predictions ?? [];
  const details = xai[xai.method as 'gradcam'];
  return {
    method: xai.method,
    predicted: fields.predicted_label,
    confidence: fields.confidence,
    runner_up: ranked[1] ? { label: ranked[1].class_name, confidence: ranked[1].confidence } : null,
    explained_class: xai.target_label,
    top_regions: details?.top_regions ?? null,
    lime_top_superpixels: xai.lime?.top_superpixels ?? null,
    detections: fields.detections?.slice(0, 5).map((d) => ({ label: d.class_name, confidence: d.confidence, box: d.bbox })) ?? null,
    classes: classNames.length,
  };
}

async function explainInWords(
  llm: { baseUrl: string; model: string; apiKey: string | undefined },
  f: Record<string, unknown>,
): Promise<NonNullable<XaiResult['explanation']>> {
  const res = await fetch(`${llm.baseUrl.replace(/\/$/, '')}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(llm.apiKey ? { authorization: `Bearer ${llm.apiKey}` } : {}) },
    body: JSON.stringify({
      model: llm.model,
      response_format: { type: 'json_object' },
      messages: [
        {
          role: 'system',
          content:
            'You explain an image model\'s prediction to its user from the facts given, and nothing else. Answer with JSON: {"summary": string, "key_factors": string[], "confidence_reasoning": string, "alternative_considerations": string}.',
        },
        { role: 'user', content: JSON.stringify(f) },
      ],
    }),
    signal: AbortSignal.timeout(30_000),
  });
  if (!res.ok) throw new Error(`the endpoint answered HTTP ${res.status}`);
  const body = (await res.json()) as { choices?: Array<{ message?: { content?: string } }>; model?: string };
  const content = body.choices?.[0]?.message?.content;
  if (!content) throw new Error('the endpoint answered without a message');
  const parsed = JSON.parse(content) as Record<string, unknown>;
  const text = (v: unknown) => (typeof v === 'string' ? v : '');
  return {
    summary: text(parsed.summary),
    key_factors: Array.isArray(parsed.key_factors) ? parsed.key_factors.map(String) : [],
    confidence_reasoning: text(parsed.confidence_reasoning),
    alternative_considerations: text(parsed.alternative_considerations),
    model: body.model ?? llm.model,
    generated_at: new Date().toISOString(),
  };
}
