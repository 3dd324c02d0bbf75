// Which model answers a prediction: a registered name (with a version, a stage, or neither: then
// its traffic split, else its production version), or a checkpoint with its task. Registry reads
// are kept for `ttlMs` (a stage change or a new split is seen within that time; a reload sees it
// at once), so that a prediction costs no database round trip.
import type { TaskType } from '../contract/index.ts';
import { parseModelRef } from '../contract/index.ts';
import type { ModelStore, RegisteredModel, TrafficSplit } from '../db/model-store.ts';
import type { ModelTarget } from './predictor.ts';
import { drawOf, pickVersion } from './traffic.ts';

export interface Resolved {
  target: ModelTarget;
  /** The cache's and the metrics' name of the model: name@version, or task:checkpoint. */
  modelKey: string;
}

export class ModelResolver {
  readonly #models: ModelStore;
  readonly #ttlMs: number;
  readonly #memo = new Map<string, { at: number; value: Promise<unknown> }>();

  constructor(models: ModelStore, ttlMs: number) {
    this.#models = models;
    this.#ttlMs = ttlMs;
  }

  /** Forgets what was read of a name (a reload, a test). */
  forget(name?: string): void {
    if (name === undefined) this.#memo.clear();
    else for (const key of [...this.#memo.keys()]) if (key.split('\u0000')[1] === name) this.#memo.delete(key);
  }

  /**
   * The target of a registered reference, or why there is none. `sticky` is the caller's value of
   * the split's sticky header (`header` reads it).
   */
  async registered(ref: string, header: (name: string) => string | undefined): Promise<Resolved | string> {
    const parsed = parseModelRef(ref);
    if (typeof parsed === 'string') return parsed;
    let entry: RegisteredModel | string;
    // A name alone (or its production stage) follows the name's traffic split when it has one.
    const split =
      'version' in parsed || parsed.stage !== 'production' ? null : await this.#read('traffic', parsed.name, () => this.#models.traffic(parsed.name));
    if (split) {
      const version = pickVersion(split.split, drawOf(split.sticky_header ? header(split.sticky_header) : undefined, parsed.name));
      entry = await this.#read('version', `${parsed.name}@${version}`, () => this.#models.resolve(`${parsed.name}@${version}`));
    } else {
      entry = await this.#read('ref', `${ref.includes('@') || ref.includes(':') ? ref : `${ref}:production`}`, () => this.#models.resolve(ref));
    }
    if (typeof entry === 'string') return entry;
    return { target: targetOf(entry), modelKey: `${entry.name}@${entry.version}` };
  }

  /** A registered version's target now (a reload re-reads it). */
  async version(name: string, version: string): Promise<ModelTarget | null> {
    const entry = await this.#models.get(name, version);
    return entry ? targetOf(entry) : null;
  }

  async #read<T extends RegisteredModel | TrafficSplit | string | null>(kind: string, key: string, load: () => Promise<T>): Promise<T> {
    const memoKey = `${kind}\u0000${key.split(/[@:]/, 1)[0]}\u0000${key}`;
    const hit = this.#memo.get(memoKey);
    if (hit && performance.now() - hit.at < this.#ttlMs) return hit.value as Promise<T>;
    const value = load();
    this.#memo.set(memoKey, { at: performance.now(), value });
    value.catch(() => this.#memo.delete(memoKey));
    return value;
  }
}

export function targetOf(entry: RegisteredModel): ModelTarget {
  return {
    checkpointPath: entry.checkpoint_path,
    task: entry.task_type as TaskType,
    name: entry.name,
    version: entry.version,
    maxBatchSize: entry.serving?.max_batch_size,
    maxQueueDelayMs: entry.serving?.max_queue_delay_ms,
  };
}

/** The target of a checkpoint asked for by path. */
export function checkpointTarget(checkpointPath: string, task: TaskType): Resolved {
  return { target: { checkpointPath, task }, modelKey: `${task}:${checkpointPath}` };
}
