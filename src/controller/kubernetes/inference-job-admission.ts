// Whether the API server takes an InferenceJob as `kubectl apply` sends it. The controller is not
// ready until it has once: an API server that serves a MutatingAdmissionPolicy on a CRD installed
// in the same breath (the chart's finalizer policy) refuses creates of it with a 503 "Resource kind
// ... not found" until its OpenAPI poll (every 5 s) has loaded the CRD's schema, whatever the
// policy's failurePolicy (Kubernetes 1.34). Ready only after, `helm install --wait` and `kubectl
// rollout status` end when an InferenceJob can be applied, not seconds before.
import type * as k8s from '@kubernetes/client-node';
import type { z } from 'zod';
import { statusOf } from '../../kube/client.ts';
import { API_VERSION, GROUP, KIND, PLURAL, VERSION, type InferenceJobSpec } from '../../kube/inference-job.ts';

/**
 * What the dry run creates: a valid test run, without the cleanup finalizer, so the finalizer
 * policy applies to it as to an InferenceJob a user writes (the REST door's carry the finalizer).
 */
const PROBE_SPEC: z.input<typeof InferenceJobSpec> = {
  type: 'test_run',
  taskType: 'image_classification',
  checkpointPath: 's3://kinfer-readiness/model.onnx',
  dataset: { path: 's3://kinfer-readiness/dataset', split: 'test' },
};

/** The API server's reason, from the Status it answered with. */
function reasonOf(err: unknown): string {
  const body = (err as { body?: unknown }).body;
  try {
    const status = typeof body === 'string' ? JSON.parse(body) : body;
    if (typeof status?.message === 'string') return status.message;
  } catch {
    // Not a Status: the error's own message says what happened.
  }
  return (err as Error).message;
}

/**
 * A readiness check: resolves once the API server has admitted a dry-run InferenceJob in
 * `namespace`, and from then on without asking again (the CRD's schema stays loaded); rejects
 * with the API server's reason until then. Concurrent calls share one request.
 */
export function inferenceJobAdmissionCheck(custom: k8s.CustomObjectsApi, namespace: string): () => Promise<void> {
  let admitted = false;
  let inFlight: Promise<void> | undefined;
  const dryRun = async () => {
    const body = { apiVersion: API_VERSION, kind: KIND, metadata: { generateName: 'kinfer-readiness-', namespace }, spec: PROBE_SPEC };
    try {
      await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, body, dryRun: 'All' });
      admitted = true;
    } catch (err) {
      throw new Error(`the API server does not admit an InferenceJob in ${namespace} yet (HTTP ${statusOf(err) ?? 'error'}): ${reasonOf(err)}`);
    }
  };
  return async () => {
    if (admitted) return;
    inFlight ??= dryRun().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  };
}
