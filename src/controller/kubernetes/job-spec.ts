// What the controller creates for one InferenceJob: a Secret with the job's callback token and
// S3 credentials, and a batch/v1 Job running the runner image with the contract's environment.
// Names are derived from the job id, so a restarted controller finds what it created.
import type * as k8s from '@kubernetes/client-node';
import { API_VERSION, KIND, LABELS, MANAGED_BY, type InferenceJob } from '../../kube/inference-job.ts';
import { placementFor, type RunnerPodDefaults } from './runner-pod-defaults.ts';

/** Runner variables that go into the Secret, referenced with secretKeyRef. */
export const SECRET_ENV = ['CALLBACK_TOKEN', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'S3_BUCKET_CREDENTIALS', 'XAI_LLM_API_KEY'] as const;

export interface RunnerPodSettings {
  image: string;
  /** Arguments to the image's entrypoint (tini + kinfer-entrypoint), e.g. ["runner"]. The
   * entrypoint is kept so that tini stays PID 1 and forwards SIGTERM to the runner. */
  args: string[];
  defaultTtlSecondsAfterFinished: number;
  defaults: RunnerPodDefaults;
}

export const jobNameFor = (jobId: string) => `kinfer-${jobId}`;
export const secretNameFor = (jobId: string) => `kinfer-${jobId}-runner`;

function ownedBy(ij: InferenceJob): k8s.V1OwnerReference[] {
  return [{ apiVersion: API_VERSION, kind: KIND, name: ij.metadata.name, uid: ij.metadata.uid, controller: true, blockOwnerDeletion: true }];
}

function labelsFor(ij: InferenceJob, jobId: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...extra,
    [LABELS.managedBy]: MANAGED_BY,
    [LABELS.name]: 'kinfer-runner',
    [LABELS.jobId]: jobId,
    [LABELS.inferenceJob]: ij.metadata.name.slice(0, 63),
    ...(ij.spec.queueName ? { [LABELS.kueueQueue]: ij.spec.queueName } : {}),
  };
}

export function buildSecret(ij: InferenceJob, jobId: string, env: Record<string, string>): k8s.V1Secret {
  const stringData: Record<string, string> = {};
  for (const name of SECRET_ENV) if (env[name] !== undefined) stringData[name] = env[name]!;
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: secretNameFor(jobId), namespace: ij.metadata.namespace, labels: labelsFor(ij, jobId), ownerReferences: ownedBy(ij) },
    type: 'Opaque',
    stringData,
  };
}

/** Quantities as the API writes them (strings); the spec also allows integers. */
function quantities(r: NonNullable<InferenceJob['spec']['resources']>): k8s.V1ResourceRequirements {
  const str = (m: Record<string, string | number> | undefined) => m && Object.fromEntries(Object.entries(m).map(([k, v]) => [k, String(v)]));
  return { ...(r.limits ? { limits: str(r.limits) } : {}), ...(r.requests ? { requests: str(r.requests) } : {}) };
}

export function buildJob(ij: InferenceJob, jobId: string, env: Record<string, string>, settings: RunnerPodSettings): k8s.V1Job {
  const { spec } = ij;
  const { defaults } = settings;
  const labels = labelsFor(ij, jobId, defaults.podLabels);
  const { gpu, resources, nodeSelector, tolerations } = placementFor(
    {
      resources: spec.resources && quantities(spec.resources),
      nodeSelector: spec.nodeSelector,
      tolerations: spec.tolerations as k8s.V1Toleration[] | undefined,
    },
    defaults,
  );
  const plain = Object.entries({ ...env, ...(gpu ? { EXECUTION_PROVIDERS: 'cuda,cpu' } : {}) })
    .filter(([name]) => !(SECRET_ENV as readonly string[]).includes(name))
    .map(([name, value]) => ({ name, value }));
  const fromSecret = SECRET_ENV.filter((name) => env[name] !== undefined).map((name) => ({
    name,
    valueFrom: { secretKeyRef: { name: secretNameFor(jobId), key: name } },
  }));
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: jobNameFor(jobId), namespace: ij.metadata.namespace, labels, ownerReferences: ownedBy(ij) },
    spec: {
      // A sharded job: one Pod per shard, each told its shard by JOB_COMPLETION_INDEX.
      ...((spec.parallelism ?? 1) > 1 ? { completionMode: 'Indexed', completions: spec.parallelism, parallelism: spec.parallelism } : {}),
      // A retried Pod resumes after the images its shard already committed.
      backoffLimit: spec.backoffLimit ?? 0,
      ...(spec.activeDeadlineSeconds ? { activeDeadlineSeconds: spec.activeDeadlineSeconds } : {}),
      ttlSecondsAfterFinished: spec.ttlSecondsAfterFinished ?? settings.defaultTtlSecondsAfterFinished,
      // Kueue admits a queued Job by unsuspending it; the controller never touches suspend again.
      ...(spec.queueName ? { suspend: true } : {}),
      // Exit 1 (the runner reported failed) and 2 (invalid configuration) are final: retrying
      // cannot help. Crashes (signals, OOM kills) are retried up to backoffLimit.
      podFailurePolicy: { rules: [{ action: 'FailJob', onExitCodes: { containerName: 'runner', operator: 'In', values: [1, 2] } }] },
      template: {
        metadata: { labels },
        spec: {
          restartPolicy: 'Never',
          // The runner needs no Kubernetes API access: it talks to the callback service only.
          automountServiceAccountToken: false,
          ...(defaults.serviceAccountName ? { serviceAccountName: defaults.serviceAccountName } : {}),
          ...(defaults.imagePullSecrets ? { imagePullSecrets: defaults.imagePullSecrets } : {}),
          securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
          ...(nodeSelector ? { nodeSelector } : {}),
          ...(tolerations ? { tolerations } : {}),
          ...(spec.affinity ? { affinity: spec.affinity as k8s.V1Affinity } : {}),
          ...(spec.priorityClassName ? { priorityClassName: spec.priorityClassName } : {}),
          containers: [
            {
              name: 'runner',
              image: spec.image ?? settings.image,
              args: settings.args,
              ...(defaults.imagePullPolicy ? { imagePullPolicy: defaults.imagePullPolicy } : {}),
              workingDir: '/app',
              env: [...plain, ...fromSecret],
              ...(resources ? { resources } : {}),
              securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
            },
          ],
        },
      },
    },
  };
}
