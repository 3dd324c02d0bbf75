// Cluster-wide defaults for runner Pods, set by the operator (Helm values `runner.*`, passed to
// the controller as KINFER_RUNNER_POD_DEFAULTS). An InferenceJob's own fields win over them; a
// job that asks for GPUs also gets the `gpu` placement (GPU nodes are usually labeled and
// tainted, and a GPU job should land nowhere else).
import type * as k8s from '@kubernetes/client-node';
import { z } from 'zod';

const quantity = z.union([z.string().min(1), z.number()]).transform(String);
const Resources = z.object({ limits: z.record(z.string(), quantity).optional(), requests: z.record(z.string(), quantity).optional() }).strict();
const Toleration = z
  .object({
    key: z.string().optional(),
    operator: z.enum(['Exists', 'Equal']).optional(),
    value: z.string().optional(),
    effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']).optional(),
    tolerationSeconds: z.number().int().optional(),
  })
  .strict();
const Placement = z.object({ nodeSelector: z.record(z.string(), z.string()).optional(), tolerations: z.array(Toleration).optional() }).strict();

export const RunnerPodDefaults = z
  .object({
    resources: Resources.optional(),
    nodeSelector: z.record(z.string(), z.string()).optional(),
    tolerations: z.array(Toleration).optional(),
    /** Placement added for jobs whose resources ask for `gpu.resourceName`. */
    gpu: Placement.extend({ resourceName: z.string().default('nvidia.com/gpu') }).default({ resourceName: 'nvidia.com/gpu' }),
    imagePullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']).optional(),
    imagePullSecrets: z.array(z.object({ name: z.string().min(1) }).strict()).optional(),
    serviceAccountName: z.string().min(1).optional(),
    /** Extra labels on runner Pods (e.g. for cost allocation); kinfer's own labels win. */
    podLabels: z.record(z.string(), z.string()).optional(),
  })
  .strict();
export type RunnerPodDefaults = z.output<typeof RunnerPodDefaults>;

export function parseRunnerPodDefaults(raw: string | undefined): RunnerPodDefaults {
  let value: unknown = {};
  if (raw !== undefined && raw.trim() !== '') {
    try {
      value = JSON.parse(raw);
    } catch (err) {
      throw new Error(`KINFER_RUNNER_POD_DEFAULTS is not valid JSON: ${(err as Error).message}`);
    }
  }
  const parsed = RunnerPodDefaults.safeParse(value);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new Error(`KINFER_RUNNER_POD_DEFAULTS is invalid: ${problems.join('; ')}`);
  }
  return parsed.data;
}

export interface RunnerPlacement {
  resources?: k8s.V1ResourceRequirements;
  nodeSelector?: Record<string, string>;
  tolerations?: k8s.V1Toleration[];
  gpu: boolean;
}

/** The Pod's resources and placement: the job's own values, else the defaults (+ GPU placement). */
export function placementFor(
  job: { resources?: k8s.V1ResourceRequirements; nodeSelector?: Record<string, string>; tolerations?: k8s.V1Toleration[] },
  defaults: RunnerPodDefaults,
): RunnerPlacement {
  const resources = job.resources ?? defaults.resources;
  const name = defaults.gpu.resourceName;
  const gpu = Number(resources?.limits?.[name] ?? resources?.requests?.[name] ?? 0) > 0;
  const nodeSelector = job.nodeSelector ?? (gpu ? { ...defaults.nodeSelector, ...defaults.gpu.nodeSelector } : defaults.nodeSelector);
  const tolerations = job.tolerations ?? (gpu ? [...(defaults.tolerations ?? []), ...(defaults.gpu.tolerations ?? [])] : defaults.tolerations);
  return {
    gpu,
    ...(resources ? { resources } : {}),
    ...(nodeSelector && Object.keys(nodeSelector).length > 0 ? { nodeSelector } : {}),
    ...(tolerations && tolerations.length > 0 ? { tolerations } : {}),
  };
}
