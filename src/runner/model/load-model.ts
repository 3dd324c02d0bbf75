// A loaded model: the session worker plus everything needed to feed it and read its outputs.
// The model is described and checked against the job's task by the contract's rules (the same
// the controller applied at submit time) before the session is opened.
import {
  describeModel,
  isEndToEndDetection,
  OBJECT_TASK_TYPES,
  ModelMetadataError,
  OnnxFormatError,
  parseSidecar,
  readOnnxHeader,
  sidecarUriOf,
  type ModelDescription,
  type ModelMetadata,
  type OnnxHeader,
  type Sidecar,
  type TaskType,
  type XaiMethod,
  type XaiPlan,
} from '../../contract/index.ts';
import { InputBuffers, WorkerSession, type SessionInfo, type SessionOptions } from '../inference/inference-session.ts';
import { sessionThreads, type SessionsSetting } from '../inference/session-split.ts';
import { ObjectNotFoundError, type ObjectStore } from '../io/object-store.ts';
import { FLOAT, type ModelIndex } from '../xai/onnx-edit.ts';
import type { InputLayout } from '../classification/preprocess.ts';
import { uint8ConversionSite, withUint8Input, type Uint8ConversionSite } from './uint8-input.ts';
import { withCandidateColumns } from './candidate-columns.ts';
import { Explainer, modelForPlan, planXai, type XaiSettings } from '../xai/explainer.ts';

export interface LoadedModel {
  /** The model's session: explanations, the predictor's tensors and `info` are its. */
  session: WorkerSession;
  /**
   * The sessions the pipeline's batches run on, `session` first (inference/session-split.ts): a
   * batch cut into parts, one each, run at once; or, for a fixed batch, whole on the least busy.
   */
  sessions: WorkerSession[];
  info: SessionInfo;
  metadata: ModelMetadata;
  /** Output shapes from the graph (-1 where dynamic), in output order. */
  outputShapes: number[][];
  /** The model's fixed batch dimension, or undefined when it is dynamic. */
  fixedBatch: number | undefined;
  /** What the session takes: float32 NCHW (the model as exported), or uint8 NHWC pixels (converted by its worker or in the graph). */
  inputLayout: InputLayout;
  /** With uint8 input: where it is converted (the worker's `uint8Conversion` is the normalization). */
  uint8ConversionSite: Uint8ConversionSite | undefined;
  loadMs: number;
  /** Whether the session's first output is the head's candidate columns (model/candidate-columns.ts). */
  candidateColumns: boolean;
  /** With explanations: the plan, and the header and index of the model it was made from. */
  xai?: { plan: XaiPlan; header: OnnxHeader; index: ModelIndex };
}

export interface LoadModelOptions extends SessionOptions {
  expectedTask: TaskType;
  /** Explanations: the session then also returns what the method reads (the target layer...). */
  xai?: { method: XaiMethod; targetLayer: string | undefined } | undefined;
  /**
   * Hand the session uint8 pixels and convert them in the graph (model/uint8-input.ts). Not with
   * explanations: they perturb and differentiate the float input.
   */
  uint8Input?: boolean | undefined;
  /**
   * A YOLO-style head's output cut down to the columns with a class score above `conf` in the
   * session (model/candidate-columns.ts). Not with explanations, nor for end-to-end exports.
   */
  candidateColumns?: { conf: number } | undefined;
  /** Sessions of their own for the pipeline's batches (SESSIONS; inference/session-split.ts). Absent: one session of all the threads. */
  split?: { setting: SessionsSetting } | undefined;
}

async function readSidecar(store: ObjectStore, checkpointUri: string): Promise<Sidecar | undefined> {
  const uri = sidecarUriOf(checkpointUri);
  try {
    return parseSidecar((await store.read(uri)).toString('utf8'), uri);
  } catch (err) {
    if (err instanceof ObjectNotFoundError) return undefined;
    throw err;
  }
}

export async function loadModel(store: ObjectStore, checkpointUri: string, opts: LoadModelOptions): Promise<LoadedModel> {
  const started = performance.now();
  const bytes = await store.read(checkpointUri);
  let header: OnnxHeader;
  try {
    header = await readOnnxHeader(bytes, { nodes: opts.xai !== undefined });
  } catch (err) {
    if (!(err instanceof OnnxFormatError)) throw err;
    throw new OnnxFormatError(`cannot load the model ${checkpointUri}: not an ONNX protobuf (${err.message})`);
  }
  const { model, problems } = describeModel(header, await readSidecar(store, checkpointUri), opts.expectedTask);
  if (problems.length > 0 || !model) throw new ModelMetadataError(problems.map((p) => p.message).join('; '));
  let xai: LoadedModel['xai'];
  let sessionBytes: Uint8Array = bytes;
  if (opts.xai) {
    const plan = planXai(header, opts.xai.method, opts.xai.targetLayer);
    const edited = modelForPlan(bytes, plan);
    sessionBytes = edited.bytes;
    xai = { plan, header, index: edited.index };
  }
  const inputLayout: InputLayout = opts.uint8Input && !opts.xai ? 'uint8-nhwc' : 'float32-nchw';
  const site = inputLayout === 'uint8-nhwc' ? uint8ConversionSite(opts.executionProviders) : undefined;
  if (site === 'graph') sessionBytes = withUint8Input(bytes, header.inputs[0]!.name, model.inputShape, model.metadata);
  const candidates = opts.candidateColumns && !opts.xai ? candidateEdit(sessionBytes, header, model, opts.expectedTask, opts.candidateColumns.conf) : undefined;
  if (candidates) sessionBytes = candidates;
  const uint8Conversion = site === 'worker' ? { mean: model.metadata.mean, std: model.metadata.std } : undefined;
  const batchDim = model.inputShape[0];
  const fixedBatch = batchDim && batchDim > 0 ? batchDim : undefined;
  const threads = opts.split
    ? sessionThreads({
        setting: opts.split.setting,
        threads: opts.intraOpNumThreads,
        cpuOnly: opts.executionProviders.every((p) => p === 'cpu'),
        explains: opts.xai !== undefined,
        modelBytes: sessionBytes.byteLength,
      })
    : [opts.intraOpNumThreads];
  // Every session but the last gets a copy of its own (new Uint8Array copies; a Buffer's slice
  // would not), handed over; the last the bytes themselves, handed over where they are an edited
  // model, ours alone (the explainers keep the original).
  const inputBuffers = new InputBuffers(2 * threads.length + 1);
  const opened = await openAll(threads, (intraOpNumThreads, i) =>
    WorkerSession.open(i < threads.length - 1 ? new Uint8Array(sessionBytes) : sessionBytes, {
      ...opts,
      intraOpNumThreads,
      uint8Conversion,
      inputBuffers,
      transferModel: i < threads.length - 1 || sessionBytes !== bytes,
    }),
  );
  const { session, info } = opened[0]!;
  return {
    session,
    sessions: opened.map((o) => o.session),
    info,
    metadata: model.metadata,
    outputShapes: model.outputShapes,
    fixedBatch,
    inputLayout,
    uint8ConversionSite: site,
    candidateColumns: candidates !== undefined,
    loadMs: performance.now() - started,
    ...(xai ? { xai } : {}),
  };
}

/**
 * Opens a session for each entry, all at once (each in its own worker: a second one made after
 * the first added its whole load time, about 100 ms for the bench's detector); closes those opened
 * when one fails.
 */
async function openAll<T>(
  threads: number[],
  open: (threads: number, i: number) => Promise<{ session: WorkerSession; info: T }>,
): Promise<Array<{ session: WorkerSession; info: T }>> {
  const settled = await Promise.allSettled(threads.map((n, i) => open(n, i)));
  const failed = settled.find((s) => s.status === 'rejected');
  if (!failed) return settled.map((s) => (s as PromiseFulfilledResult<{ session: WorkerSession; info: T }>).value);
  await Promise.all(settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value.session.close()] : [])));
  throw failed.reason;
}

/** The model cut down to its candidate columns, where its first output is a YOLO-style head's in float32. */
function candidateEdit(bytes: Uint8Array, header: OnnxHeader, model: ModelDescription, task: TaskType, conf: number): Uint8Array | undefined {
  const shape = model.outputShapes[0];
  const numClasses = model.metadata.classNames.length;
  const float32 = header.outputs[0]?.elemType === FLOAT;
  if (!OBJECT_TASK_TYPES.includes(task) || !float32 || shape?.length !== 3 || isEndToEndDetection(task, model.outputShapes, numClasses)) return undefined;
  return withCandidateColumns(bytes, { output: header.outputs[0]!.name, numClasses, conf, shape });
}

/**
 * The explainer of a model loaded for explanations (`xai` in its options): its method on the
 * model's own session; a gradient session, when the method needs one, opened with `sessionOptions`.
 */
export async function explainerOf(model: LoadedModel, settings: XaiSettings, sessionOptions: SessionOptions): Promise<Explainer> {
  if (!model.xai) throw new Error('the model was not loaded for explanations');
  return Explainer.create({
    plan: model.xai.plan,
    settings,
    session: model.session,
    outputNames: model.info.outputNames,
    index: model.xai.index,
    header: model.xai.header,
    inputShape: model.metadata.inputSize,
    fixedBatch: model.fixedBatch,
    openSession: async (bytes) => (await WorkerSession.open(bytes, sessionOptions)).session,
  });
}
