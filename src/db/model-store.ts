// The model registry's rows: one per name and version, with a stage. Promoting a version to
// `production` archives the one that held it (one production version per name, as MLflow's
// "archive existing versions").
import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';

import { parseModelRef, STAGES, type Stage } from '../contract/index.ts';

export { STAGES, type Stage };

export interface RegisteredModel {
  id: string;
  name: string;
  version: string;
  task_type: string;
  checkpoint_path: string;
  /** What the ONNX file says: class names, input size, ... */
  metadata: Record<string, unknown>;
  stage: Stage;
  tags: Record<string, string>;
  metrics: Record<string, number>;
  /** How the predictor batches this version's requests ({} = its defaults). */
  serving: ServingConfig;
  created_by: string | null;
  created_at: Date;
  updated_at: Date;
}

export interface ServingConfig {
  max_batch_size?: number;
  max_queue_delay_ms?: number;
}

/** A name's traffic over its versions (weights, any positive scale), sticky per `sticky_header` value when set. */
export interface TrafficSplit {
  name: string;
  split: Record<string, number>;
  sticky_header: string | null;
  updated_at: Date;
}

/** Where a reload asked of one predictor replica is announced to the others. */
export const MODEL_RELOADS_CHANNEL = 'kinfer_model_reloads';

const COLUMNS = 'id, name, version, task_type, checkpoint_path, metadata, stage, tags, metrics, serving, created_by, created_at, updated_at';

export class ModelStore {
  readonly #ds: DataSource;

  constructor(ds: DataSource) {
    this.#ds = ds;
  }

  /** Registers a version; null when that name and version exist already. */
  async register(m: Omit<RegisteredModel, 'id' | 'created_at' | 'updated_at' | 'serving'> & { serving?: ServingConfig }): Promise<RegisteredModel | null> {
    return this.#ds.transaction(async (tx) => {
      if (m.stage === 'production') await this.#archiveProduction(tx.query.bind(tx), m.name);
      const rows = (await tx.query(
        `INSERT INTO models (id, name, version, task_type, checkpoint_path, metadata, stage, tags, metrics, created_by, serving)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (name, version) DO NOTHING RETURNING ${COLUMNS}`,
        [
          randomUUID(),
          m.name,
          m.version,
          m.task_type,
          m.checkpoint_path,
          JSON.stringify(m.metadata),
          m.stage,
          JSON.stringify(m.tags),
          JSON.stringify(m.metrics),
          m.created_by,
          JSON.stringify(m.serving ?? {}),
        ],
      )) as RegisteredModel[];
      return rows[0] ?? null;
    });
  }

  async list(opts: { name?: string | undefined; stage?: Stage | undefined } = {}): Promise<RegisteredModel[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (opts.name) where.push(`name = $${params.push(opts.name)}`);
    if (opts.stage) where.push(`stage = $${params.push(opts.stage)}`);
    return (await this.#ds.query(
      `SELECT ${COLUMNS} FROM models ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY name, created_at DESC`,
      params,
    )) as RegisteredModel[];
  }

  async get(name: string, version: string): Promise<RegisteredModel | null> {
    const [row] = (await this.#ds.query(`SELECT ${COLUMNS} FROM models WHERE name = $1 AND version = $2`, [name, version])) as RegisteredModel[];
    return row ?? null;
  }

  /** The entry a reference names (name@version, name:stage, name = its production version), or why there is none. */
  async resolve(ref: string): Promise<RegisteredModel | string> {
    const parsed = parseModelRef(ref);
    if (typeof parsed === 'string') return parsed;
    const entry = 'version' in parsed ? await this.get(parsed.name, parsed.version) : await this.inStage(parsed.name, parsed.stage);
    if (entry) return entry;
    if ('version' in parsed) return `no registered model ${parsed.name}@${parsed.version}`;
    // "has no version in stage" of a name never registered would say it is: a typo must show.
    const known = (await this.list({ name: parsed.name })).length > 0;
    return known ? `${parsed.name} has no version in stage ${parsed.stage}` : `no registered model ${parsed.name}`;
  }

  /** The version of `name` in `stage` (the newest, for stages other than production). */
  async inStage(name: string, stage: Stage): Promise<RegisteredModel | null> {
    const [row] = (await this.#ds.query(`SELECT ${COLUMNS} FROM models WHERE name = $1 AND stage = $2 ORDER BY updated_at DESC LIMIT 1`, [
      name,
      stage,
    ])) as RegisteredModel[];
    return row ?? null;
  }

  /** Changes a version's stage and/or serving configuration. */
  async update(name: string, version: string, change: { stage?: Stage | undefined; serving?: ServingConfig | undefined }): Promise<RegisteredModel | null> {
    return this.#ds.transaction(async (tx) => {
      if (change.stage === 'production') await this.#archiveProduction(tx.query.bind(tx), name, version);
      const [rows] = (await tx.query(
        `UPDATE models SET stage = COALESCE($3, stage), serving = COALESCE($4::jsonb, serving), updated_at = now()
         WHERE name = $1 AND version = $2 RETURNING ${COLUMNS}`,
        [name, version, change.stage ?? null, change.serving ? JSON.stringify(change.serving) : null],
      )) as [RegisteredModel[], number];
      return rows[0] ?? null;
    });
  }

  async traffic(name: string): Promise<TrafficSplit | null> {
    const [row] = (await this.#ds.query('SELECT name, split, sticky_header, updated_at FROM model_traffic WHERE name = $1', [name])) as TrafficSplit[];
    return row ?? null;
  }

  async setTraffic(name: string, split: Record<string, number>, stickyHeader: string | null): Promise<TrafficSplit> {
    const [row] = (await this.#ds.query(
      `INSERT INTO model_traffic (name, split, sticky_header) VALUES ($1, $2, $3)
       ON CONFLICT (name) DO UPDATE SET split = EXCLUDED.split, sticky_header = EXCLUDED.sticky_header, updated_at = now()
       RETURNING name, split, sticky_header, updated_at`,
      [name, JSON.stringify(split), stickyHeader],
    )) as TrafficSplit[];
    return row!;
  }

  /** Tells every predictor replica (LISTEN on MODEL_RELOADS_CHANNEL) to reload a name. */
  async announceReload(name: string, origin: string): Promise<void> {
    await this.#ds.query('SELECT pg_notify($1, $2)', [MODEL_RELOADS_CHANNEL, JSON.stringify({ name, origin })]);
  }

  async clearTraffic(name: string): Promise<boolean> {
    const [, count] = (await this.#ds.query('DELETE FROM model_traffic WHERE name = $1', [name])) as [unknown, number];
    return count > 0;
  }

  async delete(name: string, version: string): Promise<boolean> {
    const [, count] = (await this.#ds.query(`DELETE FROM models WHERE name = $1 AND version = $2`, [name, version])) as [unknown, number];
    return count > 0;
  }

  async #archiveProduction(query: (sql: string, params: unknown[]) => Promise<unknown>, name: string, except = ''): Promise<void> {
    await query(`UPDATE models SET stage = 'archived', updated_at = now() WHERE name = $1 AND stage = 'production' AND version <> $2`, [name, except]);
  }
}
