// The one admission of a job, whichever door it came by (REST API, kubectl): the definition's own
// rules, then, in object storage, that the model and data exist, that the model can serve the
// task (its outputs and class names, read from the ONNX header before any image is), and that a
// test run's dataset classes are the model's. Every problem comes back with its field; the doors
// spell the fields their way. Storage that does not answer in time is not a problem of the request:
// it throws StorageUnavailableError (503 at the REST door, a retry at the kubectl door).
import {
  canonicalStorageUri,
  defaultXaiMethod,
  describeModel,
  joinStorageUri,
  ModelMetadataError,
  OnnxFormatError,
  planXai,
  XaiConfigError,
  type ModelDescription,
  type TaskType,
} from '../../contract/index.ts';
import type { FieldProblem } from '../../http/errors.ts';
import type { StorageClient } from '../../storage/object-store.ts';
import { newJobOf, type JobDefinition, type NewJob } from '../job-mapping.ts';
import { datasetProblems } from './dataset-check.ts';
import type { ModelInspector } from './model-inspector.ts';
import { definitionProblems, type Spell } from './rules.ts';
import type { StoragePolicy } from '../auth/storage-policy.ts';

export type AdmissionResult =
  | { admitted: true; job: NewJob; model: ModelDescription }
  /** `model`: what the model file says, when it could be read (a form can take the task from it). */
  | { admitted: false; problems: FieldProblem[]; model?: ModelDescription | undefined };

export class StorageUnavailableError extends Error {
  readonly code = 'STORAGE_UNAVAILABLE';
  constructor(message: string) {
    super(message);
    this.name = 'StorageUnavailableError';
  }
}

export interface AdmissionOptions {
  storage: StorageClient;
  models: ModelInspector;
  /** All storage reads of one admission together, model header included. */
  timeoutMs: number;
  /** Where jobs may read (KINFER_ALLOWED_URIS); absent: anywhere the services can reach. */
  policy?: StoragePolicy | undefined;
  /** The model registry a job's `model` is resolved in; absent: jobs must name a checkpoint. */
  registry?: ModelRegistry | undefined;
}

/** What the admission needs of the model registry (src/db/model-store.ts). */
export interface ModelRegistry {
  resolve(ref: string): Promise<{ name: string; version: string; task_type: string; checkpoint_path: string } | string>;
}

const identity: Spell = (field) => field;

/**
 * S3 refusing a request (access denied, a key it will not take) is a fact about the request's
 * location, a 400 naming the field, not an outage (503): why, or undefined for anything else.
 */
function storageRefusal(err: unknown): string | undefined {
  const name = (err as { name?: string }).name;
  const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  if (name === 'AccessDenied' || status === 403) return 'access denied';
  if (status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429) {
    return `refused by object storage (${name && name !== 'UnknownError' ? name : `HTTP ${status}`})`;
  }
  return undefined;
}

/** Why a model file could not be read, as the request's problem; undefined when it is not the request's (an outage). */
function modelReadProblem(err: unknown, uri: string): FieldProblem | undefined {
  if (err instanceof OnnxFormatError) return { field: 'checkpoint_path', message: `not an ONNX model: ${err.message}` };
  if (err instanceof ModelMetadataError) return { field: 'checkpoint_path', message: err.message };
  const why = storageRefusal(err);
  return why ? { field: 'checkpoint_path', message: `${why}: ${uri}` } : undefined;
}

export class Admission {
  readonly #o: AdmissionOptions;

  constructor(opts: AdmissionOptions) {
    this.#o = opts;
  }

  async admit(requested: JobDefinition, spell: Spell = identity): Promise<AdmissionResult> {
    const ruled = definitionProblems(requested, spell);
    if (ruled.length > 0) return { admitted: false, problems: ruled };
    const resolved = await this.#resolveModel(requested, spell);
    if ('problems' in resolved) return { admitted: false, problems: resolved.problems };
    const { def, entry } = resolved;
    // A registered model's checkpoint is the request's `model`: its problems are said there.
    const asAsked = (problems: FieldProblem[]) => (entry ? problems.map((p) => (p.field === 'checkpoint_path' ? { ...p, field: 'model' } : p)) : problems);
    // Before anything is read: a location outside the allow-list is not even looked at.
    const refused = this.#outsidePolicy(def);
    if (refused.length > 0) return { admitted: false, problems: asAsked(refused) };
    const signal = AbortSignal.timeout(this.#o.timeoutMs);
    try {
      const result = await this.#checkStorage(def, signal);
      if (!result.admitted) return { admitted: false, problems: asAsked(result.problems), model: result.model };
      // The job keeps which registered version it runs, whatever the stage names later.
      if (entry) result.job.row = { ...result.job.row, model_name: entry.name, model_version: entry.version };
      return result;
    } catch (err) {
      if (signal.aborted) throw new StorageUnavailableError(`object storage did not answer the submit-time checks within ${this.#o.timeoutMs / 1000}s`);
      if (err instanceof StorageUnavailableError) throw err;
      throw new StorageUnavailableError(`object storage failed a submit-time check: ${(err as Error).message}`);
    }
  }

  /**
   * What a model file is, as a job's admission would read it (registering a model): the same
   * allow-list, the same header checks for the task; problems name `checkpoint_path`/`task_type`.
   */
  async describe(uri: string, task: TaskType): Promise<{ problems: FieldProblem[]; model?: ModelDescription }> {
    const refused = this.#o.policy?.refusal(uri);
    if (refused) return { problems: [{ field: 'checkpoint_path', message: refused }] };
    const signal = AbortSignal.timeout(this.#o.timeoutMs);
    let files;
    try {
      files = await this.#o.models.inspect(uri, signal);
    } catch (err) {
      const problem = modelReadProblem(err, uri);
      if (problem) return { problems: [problem] };
      if (signal.aborted) throw new StorageUnavailableError(`object storage did not answer within ${this.#o.timeoutMs / 1000}s`);
      throw new StorageUnavailableError(`object storage failed: ${(err as Error).message}`);
    }
    if (!files) return { problems: [{ field: 'checkpoint_path', message: `no such object: ${uri}` }] };
    const described = describeModel(files.header, files.sidecar, task);
    return described.problems.length > 0 || !described.model ? { problems: described.problems } : { problems: [], model: described.model };
  }

  /** A definition naming a registered model, with that version's checkpoint; or why it cannot be. */
  async #resolveModel(
    def: JobDefinition,
    spell: Spell,
  ): Promise<{ def: JobDefinition; entry?: { name: string; version: string } } | { problems: FieldProblem[] }> {
    if (def.model === null) return { def };
    if (!this.#o.registry) return { problems: [{ field: 'model', message: `no model registry here: set ${spell('checkpoint_path')}` }] };
    const entry = await this.#o.registry.resolve(def.model);
    if (typeof entry === 'string') return { problems: [{ field: 'model', message: entry }] };
    if (entry.task_type !== def.task_type) {
      return { problems: [{ field: 'model', message: `${entry.name}@${entry.version} is registered for ${entry.task_type}, not ${def.task_type}` }] };
    }
    return { def: { ...def, checkpoint_path: entry.checkpoint_path }, entry };
  }

  #outsidePolicy(def: JobDefinition): FieldProblem[] {
    const { policy } = this.#o;
    if (!policy) return [];
    const locations: Array<[string, string | undefined]> = [['checkpoint_path', def.checkpoint_path]];
    if (def.kind === 'test_run') locations.push(['dataset_path', def.dataset_path]);
    else {
      locations.push(['input_config.image_path', def.input_config.image_path], ['input_config.dataset_path', def.input_config.dataset_path]);
      def.input_config.image_paths?.forEach((uri, i) => locations.push([`input_config.image_paths.${i}`, uri]));
    }
    return locations.flatMap(([field, uri]) => {
      const message = uri === undefined ? undefined : policy.refusal(uri);
      return message ? [{ field, message }] : [];
    });
  }

  async #checkStorage(def: JobDefinition, signal: AbortSignal): Promise<AdmissionResult> {
    const { storage, models } = this.#o;
    const problems: FieldProblem[] = [];
    const check = async (field: string, uri: string, what: 'object' | 'prefix') => {
      try {
        const ok = what === 'object' ? await storage.objectExists(uri, signal) : await storage.prefixExists(uri, signal);
        if (!ok) problems.push({ field, message: `${what === 'object' ? 'no such object' : 'no such folder or prefix'}: ${uri}` });
        return ok;
      } catch (err) {
        const refused = storageRefusal(err);
        if (!refused) throw err;
        problems.push({ field, message: `${refused}: ${uri}` });
        return false;
      }
    };
    const inspected = models.inspect(def.checkpoint_path, signal).then(
      (files) => ({ files, error: undefined }),
      (error: unknown) => ({ files: undefined, error }),
    );
    if (def.kind === 'test_run') {
      if (await check('dataset_path', def.dataset_path, 'prefix'))
        await check('dataset_split', joinStorageUri(canonicalStorageUri(def.dataset_path), def.dataset_split), 'prefix');
    } else if (def.inference_type === 'single') {
      await check('input_config.image_path', def.input_config.image_path!, 'object');
    } else if (def.inference_type === 'dataset') {
      await check('input_config.dataset_path', def.input_config.dataset_path!, 'prefix');
    }

    const { files, error } = await inspected;
    let model: ModelDescription | undefined;
    let seen: ModelDescription | undefined;
    const readProblem = error === undefined ? undefined : modelReadProblem(error, def.checkpoint_path);
    if (error !== undefined && !readProblem) throw error;
    if (readProblem) problems.unshift(readProblem);
    else if (files === null) problems.unshift({ field: 'checkpoint_path', message: `no such object: ${def.checkpoint_path}` });
    else if (files) {
      const described = describeModel(files.header, files.sidecar, def.task_type);
      seen = described.model;
      problems.unshift(...described.problems);
      model = described.problems.length === 0 ? described.model : undefined;
      // The explanation asked for must fit this graph (a target layer that exists, a head it can differentiate...).
      if (model && def.enable_xai) {
        try {
          planXai(files.header, def.xai_method ?? defaultXaiMethod(def.task_type), def.xai_config?.target_layer);
        } catch (err) {
          if (!(err instanceof XaiConfigError)) throw err;
          problems.push({ field: err.field, message: err.message });
          model = undefined;
        }
      }
    }
    if (problems.length === 0 && model && def.kind === 'test_run') problems.push(...(await datasetProblems(storage, def, model.metadata, signal)));
    if (problems.length > 0 || !model) return { admitted: false, problems, model: seen };
    return { admitted: true, job: newJobOf(def), model };
  }
}
