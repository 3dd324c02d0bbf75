// The InferenceJob resource, defined once: its spec and status as zod schemas, from which the
// TypeScript types come (z.infer) and the CRD's OpenAPI schema is generated (`npm run generate`,
// src/kube/crd.ts; a test fails when the committed CRD is stale). Condition types and reasons
// are constants beside the types, as in kubernetes-sigs/jobset. Also the names the controller
// puts on what it creates.
import type * as k8s from '@kubernetes/client-node';
import { z } from 'zod';
import {
  BackoffLimit,
  DatasetSplit,
  ImagePaths,
  ModelRefField,
  NumSamples,
  Parallelism,
  StorageUriField,
  TargetLayer,
  TaskType,
  TrainingJobId,
  XaiImages,
  XaiMethod,
  XaiTarget,
} from '../contract/index.ts';

export const GROUP = 'kinfer.io';
export const VERSION = 'v1alpha1';
export const PLURAL = 'inferencejobs';
export const KIND = 'InferenceJob';
export const API_VERSION = `${GROUP}/${VERSION}`;

export const FINALIZER = 'kinfer.io/cleanup';
/** On an InferenceJob created through the REST API: the database id it belongs to. */
export const JOB_ID_ANNOTATION = 'kinfer.io/job-id';
/**
 * Who applied an InferenceJob, when they say so: the chart's ValidatingAdmissionPolicy lets only
 * that user set it (request.userInfo.username), so the run records a name nobody could forge.
 */
export const CREATED_BY_ANNOTATION = 'kinfer.io/created-by';
export const LABELS = {
  managedBy: 'app.kubernetes.io/managed-by',
  name: 'app.kubernetes.io/name',
  jobId: 'kinfer.io/job-id',
  inferenceJob: 'kinfer.io/inferencejob',
  kueueQueue: 'kueue.x-k8s.io/queue-name',
} as const;
export const MANAGED_BY = 'kinfer';

/** Condition types of an InferenceJob, in the order a run meets them. */
export const CONDITION = {
  /** The request passed admission (True) or was refused (False, reason Invalid). */
  Admitted: 'Admitted',
  JobCreated: 'JobCreated',
  /** True while the runner reports; False once it has stopped. */
  Running: 'Running',
  Completed: 'Completed',
  /** The batch/v1 Job's own Failed condition (DeadlineExceeded, BackoffLimitExceeded...). */
  JobFailed: 'JobFailed',
  Failed: 'Failed',
  Cancelled: 'Cancelled',
} as const;
export type ConditionType = (typeof CONDITION)[keyof typeof CONDITION];

/** Condition reasons set by the controller; a runner's own failure reason is its error code in CamelCase. */
export const REASON = {
  Admitted: 'Admitted',
  Invalid: 'Invalid',
  JobCreated: 'JobCreated',
  RunnerReported: 'RunnerReported',
  Finished: 'Finished',
  RunnerCompleted: 'RunnerCompleted',
  CancelledByUser: 'CancelledByUser',
  InferenceJobDeleted: 'InferenceJobDeleted',
  /** A failure whose code is unknown (a row written before codes existed). */
  Failed: 'Failed',
} as const;

export const PHASES = ['Pending', 'Running', 'Completed', 'Failed', 'Cancelled'] as const;
export type Phase = (typeof PHASES)[number];

const Quantity = z.union([z.number().int(), z.string()]).meta({ 'x-kubernetes-int-or-string': true });
/** Kubernetes objects kinfer passes through without reading them: kept as they are. */
const PassThrough = z.looseObject({});

const Dataset = z
  .object({
    path: StorageUriField.describe('Dataset root: s3://bucket/prefix, file:///path or an absolute path.'),
    split: DatasetSplit.default('test').describe('Folder under the root holding the split.'),
  })
  .strict()
  .describe(
    'Labeled dataset of a test_run, under {path}/{split}/: {class_name}/* (ImageFolder) for classification; annotations.json (COCO) or images/ + labels/ (YOLO) for detection, instance segmentation and pose; images/ + masks/ (PNG class ids) for semantic segmentation.',
  );

const Input = z
  .object({
    imagePath: StorageUriField.optional().describe('One image.'),
    imagePaths: ImagePaths.optional().describe('A list of images.'),
    datasetPath: StorageUriField.optional().describe('Every image under a folder or prefix.'),
  })
  .strict()
  .describe('Images of an inference job: exactly one of imagePath, imagePaths, datasetPath.')
  .meta({
    'x-kubernetes-validations': [
      {
        rule: '[has(self.imagePath), has(self.imagePaths), has(self.datasetPath)].filter(x, x).size() == 1',
        message: 'set exactly one of imagePath, imagePaths, datasetPath',
      },
    ],
  });

const Xai = z
  .object({
    enabled: z.boolean().default(false).describe("Explain the predictions (with method, or the task's default)."),
    method: XaiMethod.optional().describe('Default: gradcam for classifiers, eigencam (gradient-free) for the other tasks.'),
    targetLayer: TargetLayer.optional().describe('ONNX tensor name of the layer to explain.'),
    numSamples: NumSamples.optional().describe('Perturbed samples (LIME, SHAP).'),
    images: XaiImages.optional(),
    target: XaiTarget.optional(),
  })
  .strict()
  .describe('Explanations of the predictions.');

export const InferenceJobSpec = z
  .object({
    type: z.enum(['test_run', 'inference']).describe('test_run evaluates a labeled dataset (metrics); inference predicts on images.'),
    taskType: TaskType.describe("The vision task the model serves; the model's own metadata must agree."),
    checkpointPath: StorageUriField.optional().describe('ONNX model: s3://bucket/key, file:///path or an absolute path (or spec.model).'),
    model: ModelRefField.optional().describe('A registered model instead of spec.checkpointPath: name@version, name:stage, or name (its production version).'),
    trainingJobId: TrainingJobId.optional().describe('Free-form reference to the training job that produced the checkpoint (test runs).'),
    dataset: Dataset.optional(),
    input: Input.optional(),
    xai: Xai.optional(),
    resources: z
      .object({
        requests: z.record(z.string(), Quantity).optional().describe('What the runner is given at least (cpu, memory).'),
        limits: z.record(z.string(), Quantity).optional().describe('What it may use at most; GPUs here, as nvidia.com/gpu.'),
      })
      .strict()
      .optional()
      .describe('The runner container\'s requests and limits; GPUs as limits["nvidia.com/gpu"].'),
    nodeSelector: z
      .record(z.string(), z.string())
      .optional()
      .describe("The runner Pods' nodeSelector, in place of the controller's defaults (KINFER_RUNNER_POD_DEFAULTS)."),
    tolerations: z.array(PassThrough).optional().describe("The runner Pods' tolerations (a tainted GPU node's), in place of the controller's defaults."),
    affinity: PassThrough.optional().describe("The runner Pods' affinity, as a Pod spec takes it."),
    priorityClassName: z.string().max(253).optional().describe("The runner Pods' PriorityClass."),
    parallelism: Parallelism.default(1).describe(
      'Shards: one Indexed batch/v1 Job of this many Pods, each taking one contiguous range of the image listing; metrics are over all of them.',
    ),
    backoffLimit: BackoffLimit.default(0).describe(
      'Retries of a runner Pod that crashed (a runner that reported failure is not retried); a retried Pod resumes after its committed images.',
    ),
    activeDeadlineSeconds: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe("Seconds the runner Job may run (the batch/v1 Job's own limit); past them it is stopped and this job fails with DEADLINE_EXCEEDED."),
    ttlSecondsAfterFinished: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe(
        'Seconds after the runner Job finishes before Kubernetes deletes it and its Pods (default KINFER_JOB_TTL_SECONDS, a day); this InferenceJob, its status and results stay.',
      ),
    image: z.string().min(1).max(1024).optional().describe("Runner image override (default from the controller's configuration)."),
    queueName: z.string().min(1).max(253).optional().describe('Kueue LocalQueue; becomes the kueue.x-k8s.io/queue-name label of the Job.'),
  })
  .strict()
  .describe('What to run. Immutable after creation.')
  .meta({
    'x-kubernetes-validations': [
      { rule: 'self == oldSelf', message: 'spec is immutable; create a new InferenceJob instead' },
      { rule: 'has(self.checkpointPath) != has(self.model)', message: 'set exactly one of spec.checkpointPath and spec.model' },
      { rule: "self.type != 'test_run' || has(self.dataset)", message: 'a test_run needs spec.dataset', fieldPath: '.dataset' },
      { rule: "self.type != 'inference' || has(self.input)", message: 'an inference job needs spec.input', fieldPath: '.input' },
      { rule: "self.type != 'test_run' || !has(self.input)", message: 'a test_run reads spec.dataset, not spec.input', fieldPath: '.input' },
    ],
  });
export type InferenceJobSpec = z.output<typeof InferenceJobSpec>;

// As metav1.Condition, with its fields' descriptions in short.
export const Condition = z.object({
  type: z.string().max(316).describe('The condition (Admitted, JobCreated, Running, Completed, JobFailed, Failed, Cancelled).'),
  status: z.enum(['True', 'False', 'Unknown']).describe('True, False or Unknown.'),
  observedGeneration: z.number().int().min(0).optional().describe('The metadata.generation the condition was set for.'),
  lastTransitionTime: z.string().meta({ format: 'date-time' }).describe('When the status last changed.'),
  reason: z.string().max(1024).describe('Why, in CamelCase, for programs.'),
  message: z.string().max(32768).describe('Why, in words, for people.'),
});
export type Condition = z.infer<typeof Condition>;

export const InferenceJobStatus = z
  .object({
    phase: z.enum(PHASES).optional().describe("Pending, Running, Completed, Failed or Cancelled (the REST API's status)."),
    conditions: z
      .array(Condition)
      .optional()
      .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] })
      .describe('Admitted, JobCreated, Running, Completed, JobFailed, Failed, Cancelled: each with its reason and message.'),
    jobId: z.string().optional().describe('Database id of the test run or inference job.'),
    jobName: z.string().optional().describe('Name of the batch/v1 Job that runs the runner.'),
    processedImages: z.number().int().optional().describe('Images processed so far, over every shard (unreadable ones included).'),
    totalImages: z.number().int().optional().describe('Images in the job, once the runner has listed them.'),
    progressPercent: z.number().optional().describe('processedImages of totalImages, in percent.'),
    progress: z.string().optional().describe('processed/total, for kubectl get.'),
    primaryMetric: z
      .object({
        name: z.string().describe("The metric's name, as in the REST API's overall_metrics."),
        value: z.number().describe('Its value.'),
        display: z.string().describe('name=value, for kubectl get.'),
      })
      .optional()
      .describe("A completed test run's headline metric (accuracy, bbox/mAP50-95, mIoU...)."),
    resultsPath: z.string().optional().describe('Where the per-image results are (a results.json under the artifacts).'),
    startTime: z.string().meta({ format: 'date-time' }).optional().describe('When the runner started.'),
    completionTime: z.string().meta({ format: 'date-time' }).optional().describe('When it ended: completed, failed or cancelled.'),
    message: z.string().optional().describe('Why the job failed, or was refused.'),
    observedGeneration: z.number().int().optional().describe('The metadata.generation this status was written for.'),
  })
  .describe('What the controller has seen of the job (written by it only: the status subresource).');
export type InferenceJobStatus = z.infer<typeof InferenceJobStatus>;

export interface InferenceJob extends k8s.KubernetesObject {
  metadata: k8s.V1ObjectMeta & { name: string; namespace: string; uid: string };
  spec: InferenceJobSpec;
  status?: InferenceJobStatus;
}

/** `kubectl get ij` columns. */
export const PRINTER_COLUMNS = [
  { name: 'Type', type: 'string', jsonPath: '.spec.type' },
  { name: 'Task', type: 'string', jsonPath: '.spec.taskType' },
  { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
  { name: 'Progress', type: 'string', jsonPath: '.status.progress' },
  { name: 'Metric', type: 'string', jsonPath: '.status.primaryMetric.display' },
  { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
];

export const keyOf = (o: { metadata?: { namespace?: string; name?: string } }) => `${o.metadata?.namespace}/${o.metadata?.name}`;
