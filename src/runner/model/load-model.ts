// A loaded model: the session worker plus everything needed to feed it and read its outputs.
import type { TaskType } from '../../contract/index.ts';
import { ModelLoadError, WorkerSession, type SessionInfo } from '../inference/inference-session.ts';
import { ObjectNotFoundError, type ObjectStore } from '../io/object-store.ts';
import { readOnnxMetadataProps } from './onnx-metadata-props.ts';
import { fromMetadataProps, ModelMetadataError, resolveModelMetadata, Sidecar, type ModelMetadata } from './model-metadata.ts';

export interface LoadedModel {
  session: WorkerSession;
  info: SessionInfo;
  metadata: ModelMetadata;
  /** The model's fixed batch dimension, or undefined when it is dynamic. */
  fixedBatch: number | undefined;
  loadMs: number;
}

export interface LoadModelOptions {
  executionProviders: string[];
  intraOpNumThreads: number;
  expectedTask: TaskType;
}

async function readSidecar(store: ObjectStore, checkpointUri: string): Promise<Sidecar | undefined> {
  const uri = `${checkpointUri}.json`;
  let raw: Buffer;
  try {
    raw = await store.read(uri);
  } catch (err) {
    if (err instanceof ObjectNotFoundError) return undefined;
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new ModelMetadataError(`sidecar ${uri} is not valid JSON`);
  }
  const parsed = Sidecar.safeParse(json);
  if (!parsed.success) throw new ModelMetadataError(`sidecar ${uri} is invalid: ${parsed.error.message}`);
  return parsed.data;
}

/**
 * The class count an output layout implies, for models without `names`: classification
 * [B, nc]; semantic segmentation [B, nc, H, W]; YOLO [B, 4 + nc (+ 32 mask coefficients | + keypoints), N].
 */
function classesFromOutputs(task: TaskType, shapes: number[][], kptShape: [number, number] | undefined): number | undefined {
  const [first] = shapes;
  if (!first || !(first[1]! > 0)) return undefined;
  if (task === 'image_classification') return first.length === 2 ? first[1] : undefined;
  if (task === 'semantic_segmentation') return first.length === 4 ? first[1] : undefined;
  if (first.length !== 3) return undefined;
  const extra = task === 'instance_segmentation' ? (shapes[1]?.[1] ?? 32) : task === 'pose_estimation' ? (kptShape ? kptShape[0] * kptShape[1] : 51) : 0;
  const nc = first[1]! - 4 - extra;
  return nc > 0 ? nc : undefined;
}

export async function loadModel(store: ObjectStore, checkpointUri: string, opts: LoadModelOptions): Promise<LoadedModel> {
  const started = performance.now();
  const bytes = await store.read(checkpointUri);
  let props: Record<string, string>;
  try {
    props = readOnnxMetadataProps(bytes);
  } catch (err) {
    throw new ModelLoadError(`cannot load the model ${checkpointUri}: not an ONNX protobuf (${(err as Error).message})`);
  }
  const sidecar = await readSidecar(store, checkpointUri);
  const { session, info } = await WorkerSession.open(bytes, opts);
  try {
    const [batchDim, , h, w] = info.inputShape;
    const sources = [fromMetadataProps(props), ...(sidecar ? [sidecar] : [])];
    const metadata = resolveModelMetadata(sources, {
      inputSize: h && w && h > 0 && w > 0 ? [h, w] : undefined,
      numClasses: classesFromOutputs(opts.expectedTask, info.outputShapes, sources.find((s) => s.kpt_shape)?.kpt_shape),
    });
    if (metadata.task && metadata.task !== opts.expectedTask) {
      throw new ModelMetadataError(`the model's task is ${metadata.task} but the job asks for ${opts.expectedTask}`);
    }
    if (info.inputShape.length !== 4 || (info.inputShape[1] !== 3 && info.inputShape[1] !== -1)) {
      throw new ModelMetadataError(`expected an NCHW input with 3 channels, the model's input is [${info.inputShape.join(', ')}]`);
    }
    return { session, info, metadata, fixedBatch: batchDim && batchDim > 0 ? batchDim : undefined, loadMs: performance.now() - started };
  } catch (err) {
    await session.close();
    throw err;
  }
}

