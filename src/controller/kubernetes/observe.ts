// What the Kubernetes controller looks at before it decides anything about one InferenceJob: its
// run's row in Postgres, its Job and Pods (informer caches), and, for an InferenceJob without a
// run yet, the admission's verdict on its spec (the same admission as the REST door's, with the
// fields spelled as kubectl users know them).
import type * as k8s from '@kubernetes/client-node';
import type { JobKind } from '../../contract/index.ts';
import type { JobStore } from '../../db/job-store.ts';
import { fieldProblems } from '../../http/plumbing.ts';
import { InferenceJobSpec, JOB_ID_ANNOTATION, type InferenceJob } from '../../kube/inference-job.ts';
import type { Admission } from '../admission/admission.ts';
import { definitionFromSpec, specFieldOf } from '../job-mapping.ts';
import { wasRefused, type Observed } from './decide.ts';

export interface World {
  store: JobStore;
  admission: Admission;
  /** The API server's own copy of an InferenceJob (not the informer's); undefined when it is gone. */
  current(namespace: string, name: string): Promise<InferenceJob | undefined>;
  job(namespace: string, name: string): k8s.V1Job | undefined;
  pods(namespace: string, jobId: string): k8s.V1Pod[];
}

export const kindOf = (ij: InferenceJob): JobKind => (ij.spec.type === 'test_run' ? 'test_run' : 'inference_job');
export const jobIdOf = (ij: InferenceJob): string => ij.metadata.annotations?.[JOB_ID_ANNOTATION] ?? ij.metadata.uid;

/** zod's path of a spec field as kubectl users write it: `spec.input.imagePaths[2]`. */
const specPath = (field: string) => `spec.${field}`.replace(/\.(\d+)(?=\.|$)/g, '[$1]');

/** The admission's verdict on an InferenceJob's spec. Throws when storage cannot answer (retry). */
export async function admitSpec(ij: InferenceJob, admission: Admission): Promise<NonNullable<Observed['admission']>> {
  const parsed = InferenceJobSpec.safeParse(ij.spec);
  if (!parsed.success) return { admitted: false, problems: fieldProblems(parsed.error).map((p) => ({ field: specPath(p.field), message: p.message })) };
  const result = await admission.admit(definitionFromSpec(ij.metadata.name, parsed.data), specFieldOf);
  if (!result.admitted) return { admitted: false, problems: result.problems.map((p) => ({ field: specFieldOf(p.field), message: p.message })) };
  return { admitted: true, job: result.job };
}

export async function observe(ij: InferenceJob, world: World, jobName: string): Promise<Observed> {
  const kind = kindOf(ij);
  const jobId = jobIdOf(ij);
  const namespace = ij.metadata.namespace;
  const row = await world.store.get(kind, jobId);
  const needsAdmission = !row && !ij.metadata.deletionTimestamp && !wasRefused(ij);
  const admission = needsAdmission ? await admitSpec(ij, world.admission) : undefined;
  const refused = admission && !admission.admitted ? await refusedAlready(ij, world) : undefined;
  return {
    ij: refused ?? ij,
    kind,
    jobId,
    row,
    ...(admission && !refused ? { admission } : {}),
    job: world.job(namespace, jobName),
    pods: world.pods(namespace, jobId),
  };
}

/**
 * The API server's copy of `ij` when it is refused already. The informer's copy may predate the
 * refusal this controller wrote a moment ago (its watch event not here yet, while the
 * finalizer's was): the API server's copy decides, so that the refusal, its status and its
 * Warning Event, is written once, not once per stale copy.
 */
async function refusedAlready(ij: InferenceJob, world: World): Promise<InferenceJob | undefined> {
  const current = await world.current(ij.metadata.namespace, ij.metadata.name);
  return current && current.metadata.uid === ij.metadata.uid && wasRefused(current) ? current : undefined;
}
