// One system, two doors: a job submitted through the REST API also becomes an InferenceJob, so
// `kubectl get ij` and the API always list the same jobs. The annotation ties it to its row.
import type { JobKind } from '../../contract/index.ts';
import type { InferenceJob as InferenceJobRow, TestRun } from '../../db/entities.ts';
import type { Job } from '../../db/job-store.ts';
import type { KubeClients } from '../../kube/client.ts';
import { API_VERSION, GROUP, JOB_ID_ANNOTATION, KIND, LABELS, PLURAL, VERSION, type InferenceJobSpec } from '../../kube/inference-job.ts';

export function inferenceJobNameFor(kind: JobKind, jobId: string): string {
  return `${kind === 'test_run' ? 'test-run' : 'inference'}-${jobId.slice(0, 8)}`;
}

export function specFor(kind: JobKind, row: Job): InferenceJobSpec {
  const common = {
    taskType: row.task_type,
    checkpointPath: row.checkpoint_path,
    ...(row.enable_xai ? { xai: { enabled: true, ...(row.xai_method ? { method: row.xai_method } : {}) } } : {}),
  };
  if (kind === 'test_run') {
    const run = row as TestRun;
    return { type: 'test_run', ...common, dataset: { path: run.dataset_path, split: run.dataset_split } };
  }
  const input = (row as InferenceJobRow).input_config;
  return {
    type: 'inference',
    ...common,
    input: 'image_path' in input ? { imagePath: input.image_path } : 'image_paths' in input ? { imagePaths: input.image_paths } : { datasetPath: input.dataset_path },
  };
}

export async function createInferenceJobFor(clients: KubeClients, namespace: string, kind: JobKind, row: Job): Promise<string> {
  const name = inferenceJobNameFor(kind, row.id);
  await clients.custom.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    plural: PLURAL,
    namespace,
    body: {
      apiVersion: API_VERSION,
      kind: KIND,
      metadata: { name, namespace, annotations: { [JOB_ID_ANNOTATION]: row.id }, labels: { [LABELS.jobId]: row.id } },
      spec: specFor(kind, row),
    },
  });
  return `${namespace}/${name}`;
}
