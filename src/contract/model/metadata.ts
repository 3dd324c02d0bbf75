// What kinfer must know about a model besides its weights, and whether the model can serve a
// task. Part of the contract between model files and every kinfer process: the controller checks
// a model at submit time with it, the runner (in any language) reads the model the same way.
// Sources, first wins per field: the model's metadata_props (Ultralytics export convention: names,
// imgsz, stride, task, kpt_shape; plus kinfer.* keys as JSON), a sidecar `<checkpoint>.json`, then
// what the graph's shapes say, then defaults (Ultralytics classification: shorter side to imgsz,
// center crop, /255, no mean/std).
import { z } from 'zod';
import { OBJECT_TASK_TYPES, type TaskType } from '../jobs.ts';
import type { OnnxHeader } from './onnx-header.ts';

const ULTRALYTICS_TASKS: Record<string, TaskType> = {
  classify: 'image_classification',
  detect: 'object_detection',
  segment: 'instance_segmentation',
  pose: 'pose_estimation',
};

/** Semantic segmentation class maps are 8-bit PNGs. */
export const MAX_SEMANTIC_CLASSES = 255;
/** Ultralytics pose models without kpt_shape are COCO's 17 keypoints with visibility. */
const DEFAULT_KPT_SHAPE: [number, 3] = [17, 3];

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
    /** Classification resize filter, as PIL computes it (torchvision: bilinear; timm: often bicubic). */
    interpolation: z.enum(['bilinear', 'bicubic']).optional(),
    /** Per-channel mean/std on [0,1] RGB values. */
    mean: triple.optional(),
    std: triple.optional(),
  })
  .passthrough();
export type Sidecar = z.infer<typeof Sidecar>;

export interface ModelMetadata {
  task: TaskType | undefined;
  /** In class-id order; `class_<i>` placeholders when the model names none (see `namedClasses`). */
  classNames: string[];
  /** True when the names came from the model or its sidecar, not from the output's size. */
  namedClasses: boolean;
  /** [height, width] of the network input. */
  inputSize: [number, number];
  stride: number | undefined;
  kptShape: [number, 2 | 3] | undefined;
  /** Classification: shorter side before the center crop, and the resize filter. */
  resizeShorter: number;
  interpolation: 'bilinear' | 'bicubic';
  mean: [number, number, number];
  std: [number, number, number];
}

/** A model as kinfer sees it before running it. */
export interface ModelDescription {
  metadata: ModelMetadata;
  /** The first input's dims, -1 where dynamic. */
  inputShape: number[];
  /** Every output's dims in graph order, -1 where dynamic. */
  outputShapes: number[][];
}

/** Why a model cannot serve a task; `field` is the request field at fault. */
export interface ModelProblem {
  field: 'checkpoint_path' | 'task_type';
  message: string;
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

/** A sidecar file's text, checked; `uri` names it in errors. */
export function parseSidecar(text: string, uri: string): Sidecar {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ModelMetadataError(`sidecar ${uri} is not valid JSON`);
  }
  const parsed = Sidecar.safeParse(json);
  if (!parsed.success) throw new ModelMetadataError(`sidecar ${uri} is invalid: ${parsed.error.message}`);
  return parsed.data;
}

/** The sidecar of a checkpoint: `<checkpoint>.json`. */
export function sidecarUriOf(checkpointUri: string): string {
  return `${checkpointUri}.json`;
}

/**
 * Values per anchor besides the box and class scores: mask coefficients (segmentation, from the
 * prototypes' channel count) or keypoint values (pose).
 */
function extraChannels(task: TaskType, shapes: number[][], kptShape: [number, number] | undefined): number {
  if (task === 'instance_segmentation') return shapes[1]?.[1] ?? 32;
  if (task === 'pose_estimation') return (kptShape ?? DEFAULT_KPT_SHAPE)[0] * (kptShape ?? DEFAULT_KPT_SHAPE)[1];
  return 0;
}

/**
 * The class count an output layout implies: classification [B, nc]; semantic segmentation
 * [B, nc, H, W]; YOLO [B, 4 + nc (+ mask coefficients | + keypoint values), N].
 */
function classesFromOutputs(task: TaskType, shapes: number[][], kptShape: [number, number] | undefined): number | undefined {
  const [first] = shapes;
  if (!first || !(first[1]! > 0)) return undefined;
  if (task === 'image_classification') return first.length === 2 ? first[1] : undefined;
  if (task === 'semantic_segmentation') return first.length === 4 ? first[1] : undefined;
  if (first.length !== 3) return undefined;
  const nc = first[1]! - 4 - extraChannels(task, shapes, kptShape);
  return nc > 0 ? nc : undefined;
}

/** Is this an end-to-end detector ([B, N, 6]: x1, y1, x2, y2, score, class) rather than [B, 4 + nc, N]? */
export function isEndToEndDetection(task: TaskType, outputShapes: number[][], numClasses: number): boolean {
  const first = outputShapes[0] ?? [];
  return task === 'object_detection' && first.length === 3 && first[1] !== 4 + numClasses && first[2] === 6;
}

function fmt(shape: number[] | undefined): string {
  return `[${(shape ?? []).map((d) => (d < 0 ? '?' : d)).join(', ')}]`;
}

/** Whether the outputs fit the task and the number of classes. */
function outputProblems(task: TaskType, shapes: number[][], metadata: ModelMetadata): string[] {
  const first = shapes[0];
  const nc = metadata.classNames.length;
  const named = metadata.namedClasses;
  if (!first) return ['the model has no outputs'];
  if (task === 'image_classification' || task === 'semantic_segmentation') {
    const rank = task === 'image_classification' ? 2 : 4;
    const layout = task === 'image_classification' ? '[B, num_classes]' : '[B, num_classes, H, W]';
    if (first.length !== rank) return [`a ${task} model outputs ${layout}; this model's first output is ${fmt(first)}`];
    const problems: string[] = [];
    if (named && first[1]! > 0 && first[1] !== nc) problems.push(`the model outputs ${first[1]} class scores but its metadata names ${nc} classes`);
    if (nc === 0)
      problems.push(`cannot tell the model's classes: no names in its metadata_props or sidecar, and its output ${fmt(first)} has a dynamic class dimension`);
    if (task === 'semantic_segmentation' && nc > MAX_SEMANTIC_CLASSES)
      problems.push(`semantic segmentation handles up to ${MAX_SEMANTIC_CLASSES} classes (class maps are 8-bit PNGs); the model has ${nc}`);
    return problems;
  }
  if (!OBJECT_TASK_TYPES.includes(task)) return [`no runner for task ${task}`];
  if (first.length !== 3)
    return [`a ${task} model outputs [B, 4 + num_classes${task === 'object_detection' ? '' : ' + ...'}, N]; this model's first output is ${fmt(first)}`];
  if (task === 'instance_segmentation' && shapes[1]?.length !== 4) {
    return ['an instance segmentation model needs a second output with the mask prototypes [B, 32, H/4, W/4]'];
  }
  if (nc === 0) return [`cannot tell the model's classes: no names in its metadata_props or sidecar, and its output ${fmt(first)} leaves none`];
  const extra = extraChannels(task, shapes, metadata.kptShape);
  if (isEndToEndDetection(task, shapes, nc) || !(first[1]! > 0) || first[1] === 4 + nc + extra) return [];
  const what = extra ? ` + ${extra} ${task === 'pose_estimation' ? 'keypoint values' : 'mask coefficients'}` : '';
  return [`the model's output ${fmt(first)} does not fit ${nc} classes${what}: expected [B, ${4 + nc + extra}, N]`];
}

/**
 * Resolves a model's metadata from its header and sidecar and checks it can serve `task`: every
 * problem is listed (an empty list means it can). The description is present unless the input
 * size or metadata cannot be read at all.
 */
export function describeModel(
  header: OnnxHeader,
  sidecar: Sidecar | undefined,
  task: TaskType,
): { model: ModelDescription | undefined; problems: ModelProblem[] } {
  const problems: ModelProblem[] = [];
  const onModel = (message: string) => problems.push({ field: 'checkpoint_path', message });
  let props: Sidecar;
  try {
    props = fromMetadataProps(header.metadataProps);
  } catch (err) {
    onModel((err as Error).message);
    return { model: undefined, problems };
  }
  const sources = [props, ...(sidecar ? [sidecar] : [])];
  const pick = <K extends keyof Sidecar>(key: K): Sidecar[K] | undefined => sources.find((s) => s[key] !== undefined)?.[key];

  const inputShape = header.inputs[0]?.dims ?? [];
  const outputShapes = header.outputs.map((o) => o.dims ?? []);
  const rawTask = pick('task');
  const modelTask = rawTask === undefined ? undefined : (ULTRALYTICS_TASKS[rawTask] ?? (rawTask as TaskType));
  if (modelTask && modelTask !== task) problems.push({ field: 'task_type', message: `the model's task is ${modelTask} but the job asks for ${task}` });
  if (header.inputs.length === 0) onModel('the model has no inputs');
  else if (inputShape.length !== 4 || (inputShape[1] !== 3 && inputShape[1] !== -1)) {
    onModel(`expected an NCHW input with 3 channels, the model's input is ${fmt(inputShape)}`);
  }

  const imgsz = pick('imgsz');
  const [h, w] = inputShape.slice(2);
  const inputSize: [number, number] | undefined =
    imgsz !== undefined ? (typeof imgsz === 'number' ? [imgsz, imgsz] : imgsz) : h && w && h > 0 && w > 0 ? [h, w] : undefined;
  if (!inputSize) {
    onModel('input size unknown: the model input has dynamic dimensions and no imgsz in metadata_props or sidecar');
    return { model: undefined, problems };
  }
  const kptShape = pick('kpt_shape');
  const named = namesFrom(pick('names'));
  const metadata: ModelMetadata = {
    task: modelTask,
    classNames: named ?? Array.from({ length: classesFromOutputs(task, outputShapes, kptShape) ?? 0 }, (_, i) => `class_${i}`),
    namedClasses: named !== undefined && hasRealNames(named),
    inputSize,
    stride: pick('stride'),
    kptShape,
    resizeShorter: pick('resize') ?? Math.min(...inputSize),
    interpolation: pick('interpolation') ?? 'bilinear',
    mean: pick('mean') ?? [0, 0, 0],
    std: pick('std') ?? [1, 1, 1],
  };
  if (!modelTask || modelTask === task) for (const message of outputProblems(task, outputShapes, metadata)) onModel(message);
  return { model: { metadata, inputShape, outputShapes }, problems };
}

/** False when names are only the `class_<i>` placeholders. */
export function hasRealNames(names: readonly string[]): boolean {
  return names.length > 0 && !names.every((n, i) => n === `class_${i}`);
}
