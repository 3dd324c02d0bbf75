// The InferenceJob resource as TypeScript (deploy/crds/kinfer.io_inferencejobs.yaml is the
// source of truth) and the names the controller puts on what it creates.
import type * as k8s from '@kubernetes/client-node';

export const GROUP = 'kinfer.io';
export const VERSION = 'v1alpha1';
export const PLURAL = 'inferencejobs';
export const KIND = 'InferenceJob';
export const API_VERSION = `${GROUP}/${VERSION}`;

export const FINALIZER = 'kinfer.io/cleanup';
/** On an InferenceJob created through the REST API: the database id it belongs to. */
export const JOB_ID_ANNOTATION = 'kinfer.io/job-id';
export const LABELS = {
  managedBy: 'app.kubernetes.io/managed-by',
  name: 'app.kubernetes.io/name',
  jobId: 'kinfer.io/job-id',
  inferenceJob: 'kinfer.io/inferencejob',
  kueueQueue: 'kueue.x-k8s.io/queue-name',
} as const;
export const MANAGED_BY = 'kinfer';

export type Phase = 'Pending' | 'Running' | 'Completed' | 'Failed' | 'Cancelled';

export interface InferenceJobSpec {
  type: 'test_run' | 'inference';
  taskType: string;
  checkpointPath: string;
  dataset?: { path: string; split?: string };
  input?: { imagePath?: string; imagePaths?: string[]; datasetPath?: string };
  xai?: { enabled?: boolean; method?: string; targetLayer?: string; numSamples?: number };
  resources?: k8s.V1ResourceRequirements;
  nodeSelector?: Record<string, string>;
  tolerations?: k8s.V1Toleration[];
  affinity?: k8s.V1Affinity;
  priorityClassName?: string;
  backoffLimit?: number;
  activeDeadlineSeconds?: number;
  ttlSecondsAfterFinished?: number;
  image?: string;
  queueName?: string;
}

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  lastTransitionTime: string;
  reason: string;
  message: string;
  observedGeneration?: number;
}

export interface InferenceJobStatus {
  phase?: Phase;
  conditions?: Condition[];
  jobId?: string;
  jobName?: string;
  processedImages?: number;
  totalImages?: number;
  progressPercent?: number;
  progress?: string;
  primaryMetric?: { name: string; value: number; display: string };
  resultsPath?: string;
  startTime?: string;
  completionTime?: string;
  message?: string;
  observedGeneration?: number;
}

export interface InferenceJob extends k8s.KubernetesObject {
  metadata: k8s.V1ObjectMeta & { name: string; namespace: string; uid: string };
  spec: InferenceJobSpec;
  status?: InferenceJobStatus;
}

export const keyOf = (o: { metadata?: { namespace?: string; name?: string } }) => `${o.metadata?.namespace}/${o.metadata?.name}`;
