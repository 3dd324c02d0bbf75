// Picks the task implementation and the dataset layout for a job.
import { ARTIFACT_NAMES, joinStorageUri, OBJECT_TASK_TYPES, type RunnerEnv } from '../../contract/index.ts';
import { maskDatasetSource } from '../datasets/mask-dataset.ts';
import { objectDatasetSource } from '../datasets/object-dataset.ts';
import { PREDICT_DEFAULTS, VAL_DEFAULTS, type NmsOptions } from '../detection/yolo-postprocess.ts';
import type { LetterboxMode } from '../detection/letterbox.ts';
import type { BackgroundWrites } from '../io/background-writes.ts';
import type { ObjectStore } from '../io/object-store.ts';
import type { LoadedModel } from '../model/load-model.ts';
import { candidateColumnsWorthIt } from '../model/candidate-columns.ts';
import { imageFolderSource, inferenceInputSource, type SampleSource } from '../pipeline/inputs.ts';
import { Visualizer } from '../visualize/visualizer.ts';
import { ClassificationTask } from './classification-task.ts';
import { ObjectTask } from './object-task.ts';
import { SemanticTask } from './semantic-task.ts';
import type { VisionTask } from './vision-task.ts';

export async function openSource(env: RunnerEnv, store: ObjectStore, model: LoadedModel): Promise<SampleSource> {
  const names = model.metadata.classNames;
  if (env.INFERENCE_TYPE !== 'test_run') return inferenceInputSource(store, env.INPUT_CONFIG!, names);
  if (env.TASK_TYPE === 'image_classification') return imageFolderSource(store, env.DATASET_PATH!, env.SPLIT, model.metadata);
  if (env.TASK_TYPE === 'semantic_segmentation') return maskDatasetSource(store, env.DATASET_PATH!, env.SPLIT, names);
  return objectDatasetSource(store, env.DATASET_PATH!, env.SPLIT, model.metadata);
}

/** A test run is `yolo val`, an inference job `yolo predict`, each with its defaults. */
function objectNms(env: RunnerEnv): { mode: LetterboxMode; nms: NmsOptions } {
  const mode = env.INFERENCE_TYPE === 'test_run' ? 'val' : 'predict';
  const defaults = mode === 'val' ? VAL_DEFAULTS : PREDICT_DEFAULTS;
  return { mode, nms: { ...defaults, conf: env.CONF_THRESHOLD ?? defaults.conf, iou: env.IOU_THRESHOLD, maxDet: env.MAX_DET } };
}

/**
 * The confidence threshold at which the session cuts a YOLO head's output down to its candidate
 * columns, for an object task where few columns pass it (model/candidate-columns.ts).
 */
export function candidateColumnsFor(env: RunnerEnv): { conf: number } | undefined {
  if (!OBJECT_TASK_TYPES.includes(env.TASK_TYPE)) return undefined;
  const { conf } = objectNms(env).nms;
  return candidateColumnsWorthIt(conf) ? { conf } : undefined;
}

export function createTask(
  env: RunnerEnv,
  ctx: { store: ObjectStore; model: LoadedModel; source: SampleSource; artifactsUri: string; writes: BackgroundWrites },
): VisionTask<unknown> {
  const { store, model, source } = ctx;
  const evaluate = env.COMPUTE_METRICS && env.INFERENCE_TYPE === 'test_run';
  const visualizer = env.SAVE_VISUALIZATIONS ? new Visualizer(store, ctx.artifactsUri, ctx.writes) : undefined;
  if (env.TASK_TYPE === 'image_classification') {
    return new ClassificationTask(
      model.metadata,
      source.classNames,
      evaluate ? (source.datasetClassIds ?? source.classNames.map((_, i) => i)) : undefined,
      env.TOP_K,
      model.inputLayout,
    ) as VisionTask<unknown>;
  }
  if (env.TASK_TYPE === 'semantic_segmentation') {
    return new SemanticTask({
      metadata: model.metadata,
      classNames: source.classNames,
      evaluate,
      ignoreIndex: env.IGNORE_INDEX,
      store,
      masksUri: joinStorageUri(ctx.artifactsUri, ARTIFACT_NAMES.masks),
      writes: ctx.writes,
      visualizer,
      layout: model.inputLayout,
    }) as VisionTask<unknown>;
  }
  if (!OBJECT_TASK_TYPES.includes(env.TASK_TYPE)) throw new Error(`no runner for task ${env.TASK_TYPE}`);
  const { mode, nms } = objectNms(env);
  return new ObjectTask({
    task: env.TASK_TYPE,
    metadata: model.metadata,
    classNames: source.classNames,
    categoryIds: source.categoryIds,
    evaluatedCategoryIds: source.evaluatedCategoryIds,
    nms,
    mode,
    outputShapes: model.outputShapes,
    evaluate,
    store,
    visualizer,
    layout: model.inputLayout,
  }) as VisionTask<unknown>;
}
