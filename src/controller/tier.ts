// What the REST API needs from the tier that runs jobs (subprocess or Kubernetes).
import type { JobKind } from '../contract/index.ts';
import type { Job } from '../db/job-store.ts';

export interface Tier {
  /** A job was stored as pending: start working on it (a failure here refuses the request). */
  onCreated(kind: JobKind, job: Job): Promise<void>;
  /** A job was cancelled in the database: stop its runner. */
  onCancelled(kind: JobKind, job: Job): Promise<void>;
  /** A finished job is about to be deleted: remove what the tier keeps of it (its InferenceJob). */
  onDeleted(kind: JobKind, job: Job): Promise<void>;
  /** Resolves when the tier can take jobs; rejects with why not (the controller's /readyz). */
  ready(): Promise<void>;
  stop(): Promise<void>;
}
