// What the runner must know about a model besides its weights: task, class names and how to
// preprocess. Sources, first wins per field: the model's metadata_props (Ultralytics export
// convention: names, imgsz, stride, task, kpt_shape; plus kinfer.* keys), a sidecar `<checkpoint>.json`,
// then defaults (Ultralytics classification: shorter side to imgsz, center crop, /255, no mean/std).
import { z } from 'zod';
import type { TaskType } from '../../contract/index.ts';
import type { ClassificationPreprocess } from '../classification/preprocess.ts';

const ULTRALYTICS_TASKS: Record<string, TaskType> = {
  classify: 'image_classification',
  detect: 'object_detection',
  segment: 'instance_segmentation',
  pose: 'pose_estimation',
};

const triple = z.tuple([z.number(), z.number(), z.number()]);

/** Sidecar JSON (and kinfer.* metadata_props, parsed as JSON values). */
export const Sidecar = z
  .object({
    names: z.union([z.array(z.string()), z.record(z.string(), z.string())]).optional(),
    imgsz: z.union([z.number().int().positive(), z.tuple([z.number().int().positive(), z.number().int().positive()])]).optional(),
    task: z.string().optional(),
    stride: z.number().int().positive().optional(),
    /** Pose: [keypoints, values per keypoint (2: x, y; 3: x, y, visibility)]. */
    kpt_shape: z.tuple([z.number().int().positive(), z.union([z.literal(2), z.literal(3)])]).optional(),
    /** Shorter side before the center crop (torchvision: 256 for a 224 crop). Default: the crop size. */
    resize: z.number().int().positive().optional(),
    /** Per-channel mean/std on [0,1] RGB values. */
    mean: triple.optional(),
    std: triple.optional(),
  })
  .passthrough();
export type Sidecar = z.infer<typeof Sidecar>;

export interface ModelMetadata extends ClassificationPreprocess {
  task: TaskType | undefined;
  classNames: string[];
  stride: number | undefined;
  kptShape: [number, 2 | 3] | undefined;
}

export class ModelMetadataError extends Error {
  readonly code = 'MODEL_METADATA_INVALID';
  constructor(message: string) {
    super(message);
    this.name = 'ModelMetadataError';
  }
}

/** Parses Ultralytics' `names`, a Python dict literal such as `{0: 'cat', 1: "dog's"}`. */
export function parsePythonNames(literal: string): string[] {
  const names: string[] = [];
  const entry = /(\d+)\s*:\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")/g;
  for (const m of literal.matchAll(entry)) {
    const raw = m[2] ?? m[3] ?? '';
    names[Number(m[1])] = raw.replace(/\\(.)/g, '$1');
  }
  return fillGaps(names);
}

function fillGaps(names: string[]): string[] {
  return Array.from(names, (n, i) => n ?? `class_${i}`);
}

function namesFrom(value: Sidecar['names']): string[] | undefined {
  if (value === undefined) return undefined;
  if (Array.isArray(value)) return value;
  const out: string[] = [];
  for (const [k, v] of Object.entries(value)) out[Number(k)] = v;
  return fillGaps(out);
}

function parseImgsz(raw: string): Sidecar['imgsz'] {
  const nums = raw.match(/\d+/g)?.map(Number) ?? [];
  if (nums.length === 1) return nums[0];
  if (nums.length === 2) return [nums[0]!, nums[1]!];
  return undefined;
}

/** Turns metadata_props into the sidecar shape, so both sources merge field by field. */
export function fromMetadataProps(props: Record<string, string>): Sidecar {
  const out: Record<string, unknown> = {};
  if (props.names) out.names = parsePythonNames(props.names);
  if (props.imgsz) out.imgsz = parseImgsz(props.imgsz);
  if (props.task) out.task = props.task;
  if (props.stride && /^\d+$/.test(props.stride.trim())) out.stride = Number(props.stride);
  if (props.kpt_shape) out.kpt_shape = props.kpt_shape.match(/\d+/g)?.map(Number);
  for (const [key, value] of Object.entries(props)) {
    if (!key.startsWith('kinfer.')) continue;
    try {
      out[key.slice('kinfer.'.length)] = JSON.parse(value);
    } catch {
      throw new ModelMetadataError(`metadata_props ${key} is not valid JSON: ${value.slice(0, 100)}`);
    }
  }
  const parsed = Sidecar.safeParse(out);
  if (!parsed.success) throw new ModelMetadataError(`model metadata_props are invalid: ${parsed.error.message}`);
  return parsed.data;
}

export function resolveModelMetadata(
  sources: Sidecar[],
  fallback: { inputSize?: [number, number] | undefined; numClasses?: number | undefined },
): ModelMetadata {
  const pick = <K extends keyof Sidecar>(key: K): Sidecar[K] | undefined => sources.find((s) => s[key] !== undefined)?.[key];
  const imgsz = pick('imgsz');
  const inputSize: [number, number] | undefined =
    imgsz === undefined ? fallback.inputSize : typeof imgsz === 'number' ? [imgsz, imgsz] : imgsz;
  if (!inputSize) {
    throw new ModelMetadataError('input size unknown: the model input has dynamic dimensions and no imgsz in metadata_props or sidecar');
  }
  const rawTask = pick('task');
  const task = rawTask === undefined ? undefined : (ULTRALYTICS_TASKS[rawTask] ?? (rawTask as TaskType));
  const classNames =
    namesFrom(pick('names')) ?? Array.from({ length: fallback.numClasses ?? 0 }, (_, i) => `class_${i}`);
  return {
    task,
    classNames,
    inputSize,
    stride: pick('stride'),
    kptShape: pick('kpt_shape'),
    resizeShorter: pick('resize') ?? Math.min(...inputSize),
    mean: pick('mean') ?? [0, 0, 0],
    std: pick('std') ?? [1, 1, 1],
  };
}
