// Every read and write of job state, for both services. Updates are conditional in SQL, so state
// only moves forward (pending -> running -> completed | failed | cancelled) whatever the order or
// number of calls, and each change is announced on the `kinfer_job_events` channel.
import { randomUUID } from 'node:crypto';
import type { DataSource, EntityManager, EntitySchema } from 'typeorm';
import { queryPrepared } from './prepared.ts';
import {
  isTerminal,
  type DonePayload,
  type ImageResult,
  type JobErrorCode,
  type JobKind,
  type JobStatus,
  type ProgressPayload,
  type ShardDonePayload,
  type ShardRef,
} from '../contract/index.ts';
import {
  InferenceJobEntity,
  InferenceResultEntity,
  TestImageResultEntity,
  TestRunEntity,
  type InferenceJob,
  type InferenceResult,
  type TestImageResult,
  type TestRun,
} from './entities.ts';

export const JOB_EVENTS_CHANNEL = 'kinfer_job_events';

const TABLES = {
  test_run: { jobs: 'test_runs', images: 'test_image_results', fk: 'test_run_id' },
  inference_job: { jobs: 'inference_jobs', images: 'inference_results', fk: 'inference_job_id' },
} as const;

export type Job = TestRun | InferenceJob;

/**
 * One job's row by id, every column of its entity: the controller reads it on every reconcile and
 * the REST door on every GET, so it is a named prepared statement (src/db/prepared.ts) rather than
 * TypeORM's findOneBy, which built the query anew each time. The columns are listed, not `*`: a
 * prepared `*` fails ("cached plan must not change result type") once a migration adds a column.
 * Postgres' own types give the entity's (jsonb parsed, timestamptz as Date); a test holds it equal
 * to findOneBy's.
 */
const selectById = (entity: EntitySchema<Job>): string =>
  `SELECT ${Object.keys(entity.options.columns)
    .map((c) => `"${c}"`)
    .join(', ')} FROM ${entity.options.tableName} WHERE id = $1`;
const SELECT_JOB: Record<JobKind, string> = {
  test_run: selectById(TestRunEntity as EntitySchema<Job>),
  inference_job: selectById(InferenceJobEntity as EntitySchema<Job>),
};

/** Whose jobs a caller may see: its own, and those applied with kubectl in the namespaces it may see. */
export interface Visibility {
  subject: string;
  namespaces: string[];
}
export type NewTestRun = Pick<
  TestRun,
  'checkpoint_path' | 'dataset_path' | 'dataset_split' | 'task_type' | 'name' | 'training_job_id' | 'enable_xai' | 'xai_method' | 'xai_config'
> &
  Partial<Pick<TestRun, 'created_by' | 'namespace' | 'model_name' | 'model_version' | 'parallelism' | 'backoff_limit'>>;
export type NewInferenceJob = Pick<
  InferenceJob,
  'checkpoint_path' | 'task_type' | 'inference_type' | 'input_config' | 'name' | 'enable_xai' | 'xai_method' | 'xai_config'
> &
  Partial<Pick<InferenceJob, 'created_by' | 'namespace' | 'model_name' | 'model_version' | 'parallelism' | 'backoff_limit'>>;

/** The outcome of a state change: applied, refused because the job already ended, or no such job. */
export type UpdateOutcome =
  | { outcome: 'applied' | 'unchanged'; status: JobStatus }
  | { outcome: 'terminal'; status: JobStatus }
  | { outcome: 'not_found' }
  /** The report contradicts what is stored (a completed job without a result for every image). */
  | { outcome: 'inconsistent'; message: string };

export interface Page<T> {
  total: number;
  items: T[];
}

/** `SELECT pg_notify(...)` over the rows an UPDATE ... RETURNING produced. */
function notifying(kind: JobKind, update: string): string {
  return `WITH changed AS (${update} RETURNING id, status, processed_images, total_images)
    SELECT changed.*, pg_notify('${JOB_EVENTS_CHANNEL}', json_build_object('kind', '${kind}', 'id', changed.id, 'status', changed.status, 'processed_images', changed.processed_images, 'total_images', changed.total_images)::text)
    FROM changed`;
}

/**
 * As `notifying`, for progress reports: a NOTIFY only when what listeners show changes, the
 * status or the whole percent (every report while the total is unknown). A NOTIFY per report,
 * every few images of every running job, cost Postgres and each listening controller more than
 * the update itself: bench:callback, 2026-12-02, 652 requests/s with it, 1,025 without.
 * `update` is `UPDATE <table> j SET ... FROM before ... WHERE j.id = before.id AND ...`; the
 * percent before is the statement's snapshot, so under concurrent reports a change is never missed
 * (progress only grows), at worst told twice.
 */
function notifyingOnVisibleChange(kind: JobKind, update: string): string {
  return `WITH before AS (SELECT id, status AS old_status, floor(progress_percent) AS old_percent FROM ${TABLES[kind].jobs} WHERE id = $1),
    changed AS (${update} RETURNING j.id, j.status, j.processed_images, j.total_images, j.progress_percent, before.old_status, before.old_percent)
    SELECT changed.id, changed.status,
      CASE WHEN changed.status IS DISTINCT FROM changed.old_status
             OR floor(changed.progress_percent) IS DISTINCT FROM changed.old_percent
             OR COALESCE(changed.total_images, 0) = 0
        THEN pg_notify('${JOB_EVENTS_CHANNEL}', json_build_object('kind', '${kind}', 'id', changed.id, 'status', changed.status, 'processed_images', changed.processed_images, 'total_images', changed.total_images)::text)
      END
    FROM changed`;
}

/** A report whose counts would leave more images processed than the job's total (rolled back). */
class InconsistentCounts extends Error {}

/** SQL: the counts an update leaves hold (never more images processed than a known total). */
const countsHold = (processed: string, total: string) => `(${total} IS NULL OR ${processed} <= ${total})`;

/** Why a report's counts were refused, from the job's row as it stays. */
const countsMessage = (row: { processed_images: number; total_images: number | null } | undefined) =>
  `the report's counts contradict the job's (${row?.processed_images ?? 0} images processed of ${row?.total_images ?? 'an unknown number'}): more processed images than the total`;

export class JobStore {
  readonly #ds: DataSource;

  constructor(ds: DataSource) {
    this.#ds = ds;
  }

  async createTestRun(input: NewTestRun): Promise<TestRun> {
    const repo = this.#ds.getRepository(TestRunEntity);
    return repo.save(repo.create({ ...input, id: randomUUID(), trace_id: randomUUID(), status: 'pending' }));
  }

  async createInferenceJob(input: NewInferenceJob): Promise<InferenceJob> {
    const repo = this.#ds.getRepository(InferenceJobEntity);
    return repo.save(repo.create({ ...input, id: randomUUID(), trace_id: randomUUID(), status: 'pending' }));
  }

  /**
   * Creates the row of a job that arrived through Kubernetes (its id is the InferenceJob's), or
   * leaves an existing one as it is: a controller that restarts mid-way creates nothing twice.
   */
  async ensureTestRun(id: string, input: NewTestRun, executor: string, executorRef: string): Promise<TestRun> {
    await this.#insertIgnoringConflict(TestRunEntity, { ...input, id, trace_id: randomUUID(), status: 'pending', executor, executor_ref: executorRef });
    return (await this.get('test_run', id))!;
  }

  async ensureInferenceJob(id: string, input: NewInferenceJob, executor: string, executorRef: string): Promise<InferenceJob> {
    await this.#insertIgnoringConflict(InferenceJobEntity, { ...input, id, trace_id: randomUUID(), status: 'pending', executor, executor_ref: executorRef });
    return (await this.get('inference_job', id))!;
  }

  async #insertIgnoringConflict<T extends object>(entity: EntitySchema<T>, row: Partial<T>): Promise<void> {
    // TypeORM's deep-partial insert type rejects jsonb Record columns; the row is a plain entity.
    await this.#ds
      .createQueryBuilder()
      .insert()
      .into(entity)
      .values(this.#ds.getRepository(entity).create(row as never))
      .orIgnore()
      .execute();
  }

  async get(kind: 'test_run', id: string): Promise<TestRun | null>;
  async get(kind: 'inference_job', id: string): Promise<InferenceJob | null>;
  async get(kind: JobKind, id: string): Promise<Job | null>;
  async get(kind: JobKind, id: string): Promise<Job | null> {
    return (await queryPrepared<Job>(this.#ds, `kinfer_get_${kind}`, SELECT_JOB[kind], [id]))[0] ?? null;
  }

  /** Newest first; `visibleTo` keeps a caller's own jobs and those of the namespaces it may see (absent: all). */
  async list(
    kind: JobKind,
    opts: {
      status?: JobStatus | undefined;
      task_type?: string | undefined;
      model?: string | undefined;
      since?: string | undefined;
      until?: string | undefined;
      skip: number;
      limit: number;
      visibleTo?: Visibility | undefined;
    },
  ): Promise<Page<Job>> {
    const entity = kind === 'test_run' ? TestRunEntity : InferenceJobEntity;
    const query = this.#ds.getRepository<Job>(entity).createQueryBuilder('j');
    if (opts.status) query.andWhere('j.status = :status', { status: opts.status });
    if (opts.task_type) query.andWhere('j.task_type = :task', { task: opts.task_type });
    if (opts.model) {
      const like = `%${opts.model.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      query.andWhere('(j.checkpoint_path ILIKE :like OR j.model_name ILIKE :like)', { like });
    }
    if (opts.since) query.andWhere('j.created_at >= :since', { since: opts.since });
    if (opts.until) query.andWhere('j.created_at < :until', { until: opts.until });
    if (opts.visibleTo) {
      const { subject, namespaces } = opts.visibleTo;
      query.andWhere(namespaces.length > 0 ? '(j.created_by = :subject OR j.namespace IN (:...namespaces))' : 'j.created_by = :subject', {
        subject,
        namespaces,
      });
    }
    const [items, total] = await query.orderBy('j.created_at', 'DESC').addOrderBy('j.id', 'ASC').skip(opts.skip).take(opts.limit).getManyAndCount();
    return { total, items };
  }

  /** Active jobs a REST caller created (its concurrent-job quota). */
  async activeCountOf(subject: string): Promise<number> {
    const [row] = (await this.#ds.query(
      `SELECT (SELECT count(*) FROM test_runs WHERE created_by = $1 AND status IN ('pending', 'running'))
            + (SELECT count(*) FROM inference_jobs WHERE created_by = $1 AND status IN ('pending', 'running')) AS n`,
      [subject],
    )) as [{ n: string }];
    return Number(row.n);
  }

  async listTestImages(
    testRunId: string,
    opts: { skip: number; limit: number; isCorrect?: boolean | undefined; trueLabel?: string | undefined; predictedLabel?: string | undefined },
  ) {
    const repo = this.#ds.getRepository(TestImageResultEntity);
    const [counts] = (await this.#ds.query(
      `SELECT count(*)::int AS total, count(*) FILTER (WHERE is_correct)::int AS correct, count(*) FILTER (WHERE is_correct = false)::int AS incorrect
       FROM test_image_results WHERE test_run_id = $1`,
      [testRunId],
    )) as Array<{ total: number; correct: number; incorrect: number }>;
    const [items, filteredTotal] = await repo.findAndCount({
      where: {
        test_run_id: testRunId,
        ...(opts.isCorrect === undefined ? {} : { is_correct: opts.isCorrect }),
        ...(opts.trueLabel === undefined ? {} : { true_label: opts.trueLabel }),
        ...(opts.predictedLabel === undefined ? {} : { predicted_label: opts.predictedLabel }),
      },
      order: { image_index: 'ASC' },
      skip: opts.skip,
      take: opts.limit,
    });
    return { counts: counts!, filteredTotal, items: await this.#withXai(testRunId, items) };
  }

  async listInferenceResults(jobId: string, opts: { skip: number; limit: number }) {
    const [items, total] = await this.#ds.getRepository(InferenceResultEntity).findAndCount({
      where: { inference_job_id: jobId },
      order: { image_index: 'ASC' },
      skip: opts.skip,
      take: opts.limit,
    });
    return { total, items: await this.#withXai(jobId, items) };
  }

  /** The rows with their `xai` objects (null where the image has none). */
  async #withXai<T extends { image_index: number; xai?: unknown }>(jobId: string, rows: T[]): Promise<T[]> {
    if (rows.length === 0) return rows;
    const found = (await this.#ds.query('SELECT image_index, xai FROM xai_results WHERE job_id = $1 AND image_index = ANY($2::int[])', [
      jobId,
      rows.map((r) => r.image_index),
    ])) as Array<{ image_index: number; xai: unknown }>;
    const byIndex = new Map(found.map((f) => [f.image_index, f.xai]));
    return rows.map((r) => ({ ...r, xai: byIndex.get(r.image_index) ?? null }));
  }

  /** Every per-image row of a job in image order, read a page at a time (exports of any size). */
  async *allImages(kind: JobKind, jobId: string, pageSize = 500): AsyncGenerator<TestImageResult | InferenceResult> {
    const { fk } = TABLES[kind];
    const entity = kind === 'test_run' ? TestImageResultEntity : InferenceResultEntity;
    let after = -1;
    for (;;) {
      const page = (await this.#ds
        .getRepository<TestImageResult | InferenceResult>(entity)
        .createQueryBuilder('r')
        .where(`r.${fk} = :jobId`, { jobId })
        .andWhere('r.image_index > :after', { after })
        .orderBy('r.image_index', 'ASC')
        .take(pageSize)
        .getMany()) as Array<TestImageResult | InferenceResult>;
      yield* await this.#withXai(jobId, page);
      if (page.length < pageSize) return;
      after = page.at(-1)!.image_index;
    }
  }

  /**
   * The images (by path) on which test runs disagree: a different predicted class, or one right
   * and another wrong. Each with every run's prediction, in the runs' order; paged by path.
   */
  async disagreements(
    runIds: string[],
    opts: { skip: number; limit: number },
  ): Promise<{
    total: number;
    items: Array<{
      image_path: string;
      true_label: string | null;
      runs: Array<{ predicted_label: string | null; is_correct: boolean | null; confidence: number | null } | null>;
    }>;
  }> {
    const grouped = `
      SELECT image_path FROM test_image_results WHERE test_run_id = ANY($1::uuid[])
      GROUP BY image_path
      HAVING count(DISTINCT coalesce(predicted_class_id, -1)) > 1 OR count(DISTINCT is_correct) > 1 OR count(*) < cardinality($1::uuid[])`;
    const [{ total }] = (await this.#ds.query(`SELECT count(*)::int AS total FROM (${grouped}) g`, [runIds])) as [{ total: number }];
    const rows = (await this.#ds.query(
      `SELECT r.image_path, r.test_run_id, r.true_label, r.predicted_label, r.is_correct, r.confidence
       FROM test_image_results r JOIN (${grouped} ORDER BY image_path OFFSET $2 LIMIT $3) g USING (image_path)
       WHERE r.test_run_id = ANY($1::uuid[]) ORDER BY r.image_path`,
      [runIds, opts.skip, opts.limit],
    )) as Array<{
      image_path: string;
      test_run_id: string;
      true_label: string | null;
      predicted_label: string | null;
      is_correct: boolean | null;
      confidence: number | null;
    }>;
    const byPath = new Map<string, (typeof rows)[number][]>();
    for (const r of rows) byPath.set(r.image_path, [...(byPath.get(r.image_path) ?? []), r]);
    return {
      total,
      items: [...byPath.entries()].map(([image_path, rs]) => ({
        image_path,
        true_label: rs[0]!.true_label,
        runs: runIds.map((id) => {
          const r = rs.find((x) => x.test_run_id === id);
          return r ? { predicted_label: r.predicted_label, is_correct: r.is_correct, confidence: r.confidence } : null;
        }),
      })),
    };
  }

  /**
   * Deletes a finished job with its per-image rows (ON DELETE CASCADE) and its explanations;
   * false when there is no such finished job (not there, or still pending or running).
   */
  async deleteFinished(kind: JobKind, id: string): Promise<boolean> {
    return this.#ds.transaction(async (tx) => {
      const [, count] = (await tx.query(`DELETE FROM ${TABLES[kind].jobs} WHERE id = $1 AND status IN ('completed', 'failed', 'cancelled')`, [id])) as [
        unknown,
        number,
      ];
      if (count > 0) {
        await tx.query('DELETE FROM xai_results WHERE job_id = $1', [id]);
        await tx.query('DELETE FROM job_shards WHERE job_id = $1', [id]);
      }
      return count > 0;
    });
  }

  /** One per-image row's path (where the image came from), or null. */
  async imagePath(kind: JobKind, jobId: string, index: number): Promise<string | null> {
    const { images, fk } = TABLES[kind];
    const [row] = (await this.#ds.query(`SELECT image_path FROM ${images} WHERE ${fk} = $1 AND image_index = $2`, [jobId, index])) as Array<{
      image_path: string;
    }>;
    return row?.image_path ?? null;
  }

  /** Pending jobs no executor has taken yet, oldest first. */
  async oldestPending(kind: JobKind, limit: number): Promise<Array<{ kind: JobKind; id: string; created_at: Date }>> {
    if (limit <= 0) return [];
    const rows = (await this.#ds.query(
      `SELECT id, created_at FROM ${TABLES[kind].jobs} WHERE status = 'pending' AND executor IS NULL ORDER BY created_at LIMIT $1`,
      [limit],
    )) as Array<{ id: string; created_at: Date }>;
    return rows.map((r) => ({ kind, ...r }));
  }

  /** Takes a pending job for an executor; null when another controller (or a cancel) got there first. */
  async claim(kind: JobKind, id: string, executor: string): Promise<Job | null> {
    const [rows] = (await this.#ds.query(
      `UPDATE ${TABLES[kind].jobs} SET executor = $2, updated_at = now() WHERE id = $1 AND status = 'pending' AND executor IS NULL RETURNING id`,
      [id, executor],
    )) as [Array<{ id: string }>, number];
    return rows.length === 0 ? null : this.get(kind, id);
  }

  async setExecutorRef(kind: JobKind, id: string, ref: string, executor?: string): Promise<void> {
    await this.#ds.query(`UPDATE ${TABLES[kind].jobs} SET executor_ref = $2, executor = COALESCE($3, executor), updated_at = now() WHERE id = $1`, [
      id,
      ref,
      executor ?? null,
    ]);
  }

  /** Active jobs of one executor (to re-adopt or fail after a controller restart). */
  async activeFor(kind: JobKind, executor: string): Promise<Job[]> {
    return this.#activeQuery(kind, executor).getMany();
  }

  /** Active jobs of an executor whose runner started and then sent nothing (progress, heartbeat) for `seconds`. */
  async stalled(kind: JobKind, executor: string, seconds: number): Promise<Job[]> {
    return this.#activeQuery(kind, executor)
      .andWhere('j.executor_ref IS NOT NULL')
      .andWhere(`j.updated_at < now() - make_interval(secs => :seconds)`, { seconds })
      .getMany();
  }

  #activeQuery(kind: JobKind, executor: string) {
    const entity = kind === 'test_run' ? TestRunEntity : InferenceJobEntity;
    return this.#ds
      .getRepository<Job>(entity)
      .createQueryBuilder('j')
      .where('j.executor = :executor', { executor })
      .andWhere(`j.status IN ('pending', 'running')`);
  }

  /** Gives a claimed but never started job back to the queue. */
  async release(kind: JobKind, id: string): Promise<void> {
    await this.#ds.query(`UPDATE ${TABLES[kind].jobs} SET executor = NULL, executor_ref = NULL WHERE id = $1 AND status = 'pending'`, [id]);
  }

  /** The runner's progress; the first one moves pending -> running. */
  async applyProgress(kind: JobKind, id: string, p: ProgressPayload): Promise<UpdateOutcome> {
    const table = TABLES[kind].jobs;
    const rows = await queryPrepared<{ status: JobStatus }>(
      this.#ds,
      `kinfer_progress_${kind}`,
      notifyingOnVisibleChange(
        kind,
        `UPDATE ${table} j SET
           status = 'running',
           started_at = COALESCE(j.started_at, now()),
           processed_images = GREATEST(j.processed_images, $2),
           failed_images = GREATEST(j.failed_images, $3),
           total_images = COALESCE($4, j.total_images),
           progress_percent = CASE WHEN COALESCE($4, j.total_images) > 0
             THEN LEAST(100, GREATEST(j.progress_percent, 100.0 * GREATEST(j.processed_images, $2) / COALESCE($4, j.total_images)))
             ELSE j.progress_percent END,
           updated_at = now()
         FROM before
         WHERE j.id = before.id AND j.status IN ('pending', 'running')
           AND ${countsHold('GREATEST(j.processed_images, $2)', 'COALESCE($4, j.total_images)')}`,
      ),
      [id, p.processed_images, p.failed_images ?? 0, p.total_images ?? null],
    );
    if (rows.length > 0) return { outcome: 'applied', status: rows[0]!.status };
    return this.#whyNot(kind, id, true);
  }

  /**
   * A shard's progress (its own counts; `total_images` the job's): the job's counts become the
   * sums over its shards. The job's row is locked, so concurrent shards never undercount.
   */
  async applyShardProgress(kind: JobKind, id: string, p: ProgressPayload & { shard: ShardRef }): Promise<UpdateOutcome> {
    return this.#refusingInconsistent(() =>
      this.#ds.transaction(async (tx) => {
        const locked = await this.#lockActive(tx, kind, id);
        if ('outcome' in locked) return locked;
        await this.#upsertShard(tx, id, p.shard.index, p.processed_images, p.failed_images ?? 0, false);
        return { outcome: 'applied' as const, status: await this.#sumShards(tx, kind, id, p.total_images ?? null) };
      }),
    );
  }

  /**
   * A shard finished its images. `last`: every shard of the job has (this call or an earlier
   * one made it so), and the caller is to score the job and report it done. Repeating the call
   * (a retried Pod) answers the same.
   */
  async applyShardDone(
    kind: JobKind,
    id: string,
    shard: number,
    p: ShardDonePayload,
  ): Promise<UpdateOutcome | { outcome: 'applied'; status: JobStatus; last: boolean }> {
    return this.#refusingInconsistent(() =>
      this.#ds.transaction(async (tx) => {
        const locked = await this.#lockActive(tx, kind, id);
        if ('outcome' in locked) return locked;
        if (p.count !== locked.parallelism || shard >= locked.parallelism) {
          return { outcome: 'inconsistent' as const, message: `shard ${shard} of ${p.count} does not fit a job of ${locked.parallelism} shards` };
        }
        await this.#upsertShard(tx, id, shard, p.processed_images, p.failed_images, true);
        const status = await this.#sumShards(tx, kind, id, null);
        const [{ finished }] = (await tx.query(`SELECT count(*)::int AS finished FROM job_shards WHERE job_id = $1 AND finished_at IS NOT NULL`, [id])) as [
          { finished: number },
        ];
        return { outcome: 'applied' as const, status, last: finished === locked.parallelism };
      }),
    );
  }

  /** Runs a shard's update; one whose counts would contradict the job's total is rolled back and refused. */
  async #refusingInconsistent<T>(update: () => Promise<T>): Promise<T | UpdateOutcome> {
    try {
      return await update();
    } catch (err) {
      if (err instanceof InconsistentCounts) return { outcome: 'inconsistent', message: err.message };
      throw err;
    }
  }

  /** Each shard's counts, for the API and the dashboard. */
  async shards(id: string): Promise<Array<{ shard: number; processed_images: number; failed_images: number; finished: boolean }>> {
    return (await this.#ds.query(
      `SELECT shard, processed_images, failed_images, finished_at IS NOT NULL AS finished FROM job_shards WHERE job_id = $1 ORDER BY shard`,
      [id],
    )) as Array<{ shard: number; processed_images: number; failed_images: number; finished: boolean }>;
  }

  async #lockActive(tx: EntityManager, kind: JobKind, id: string): Promise<{ parallelism: number } | UpdateOutcome> {
    const [job] = (await tx.query(`SELECT status, parallelism FROM ${TABLES[kind].jobs} WHERE id = $1 FOR UPDATE`, [id])) as Array<{
      status: JobStatus;
      parallelism: number;
    }>;
    if (!job) return { outcome: 'not_found' };
    if (isTerminal(job.status)) return { outcome: 'terminal', status: job.status };
    return { parallelism: job.parallelism };
  }

  async #upsertShard(tx: EntityManager, id: string, shard: number, processed: number, failed: number, finished: boolean): Promise<void> {
    await tx.query(
      `INSERT INTO job_shards (job_id, shard, processed_images, failed_images, finished_at) VALUES ($1, $2, $3, $4, CASE WHEN $5 THEN now() END)
       ON CONFLICT (job_id, shard) DO UPDATE SET
         processed_images = GREATEST(job_shards.processed_images, EXCLUDED.processed_images),
         failed_images = GREATEST(job_shards.failed_images, EXCLUDED.failed_images),
         finished_at = COALESCE(job_shards.finished_at, EXCLUDED.finished_at),
         updated_at = now()`,
      [id, shard, processed, failed, finished],
    );
  }

  /** The job's counts from its shards' (never going back), running from its first report. */
  async #sumShards(tx: EntityManager, kind: JobKind, id: string, total: number | null): Promise<JobStatus> {
    const rows = (await tx.query(
      notifyingOnVisibleChange(
        kind,
        `UPDATE ${TABLES[kind].jobs} j SET
           status = 'running',
           started_at = COALESCE(j.started_at, now()),
           processed_images = GREATEST(j.processed_images, s.processed),
           failed_images = GREATEST(j.failed_images, s.failed),
           total_images = COALESCE($2, j.total_images),
           progress_percent = CASE WHEN COALESCE($2, j.total_images) > 0
             THEN LEAST(100, GREATEST(j.progress_percent, 100.0 * GREATEST(j.processed_images, s.processed) / COALESCE($2, j.total_images)))
             ELSE j.progress_percent END,
           updated_at = now()
         FROM before, (SELECT COALESCE(sum(processed_images), 0)::int AS processed, COALESCE(sum(failed_images), 0)::int AS failed FROM job_shards WHERE job_id = $1) s
         WHERE j.id = before.id
           AND ${countsHold('GREATEST(j.processed_images, s.processed)', 'COALESCE($2, j.total_images)')}`,
      ),
      [id, total],
    )) as Array<{ status: JobStatus }>;
    if (rows.length === 0)
      throw new InconsistentCounts(countsMessage((await tx.query(`SELECT processed_images, total_images FROM ${TABLES[kind].jobs} WHERE id = $1`, [id]))[0]));
    return rows[0]!.status;
  }

  /** Stores per-image results; a result already stored for the same index is kept as it was. */
  async insertImageResults(kind: JobKind, id: string, results: ImageResult[]): Promise<UpdateOutcome> {
    const { jobs, images, fk } = TABLES[kind];
    return this.#ds.transaction(async (tx) => {
      const [job] = (await tx.query(`SELECT status FROM ${jobs} WHERE id = $1 FOR SHARE`, [id])) as Array<{ status: JobStatus }>;
      if (!job) return { outcome: 'not_found' as const };
      if (job.status !== 'pending' && job.status !== 'running') return { outcome: 'terminal' as const, status: job.status };
      const testRun = kind === 'test_run';
      const columns = [
        fk,
        'image_index',
        'image_path',
        'predicted_class_id',
        'predicted_label',
        'confidence',
        'predictions',
        'image_id',
        'detections',
        'mask_path',
        'image_metrics',
        'visualization_path',
        'preprocess_ms',
        'inference_ms',
        'error_message',
        ...(testRun ? ['true_class_id', 'true_label', 'is_correct', 'ground_truth'] : []),
      ];
      const params: unknown[] = [];
      const json = (v: unknown) => (v === null || v === undefined ? null : JSON.stringify(v));
      const tuples = results.map((r) => {
        const values = [
          id,
          r.image_index,
          r.image_path,
          r.predicted_class_id,
          r.predicted_label,
          r.confidence,
          json(r.predictions),
          r.image_id ?? null,
          json(r.detections),
          r.mask_path ?? null,
          json(r.image_metrics),
          r.visualization_path ?? null,
          r.timings?.preprocess_ms ?? null,
          r.timings?.inference_ms ?? null,
          r.error,
          ...(testRun ? [r.true_class_id ?? null, r.true_label ?? null, r.is_correct ?? null, json(r.ground_truth)] : []),
        ];
        const placeholders = values.map((v) => {
          params.push(v);
          return `$${params.length}`;
        });
        return `(${placeholders.join(', ')})`;
      });
      await tx.query(`INSERT INTO ${images} (${columns.join(', ')}) VALUES ${tuples.join(', ')} ON CONFLICT (${fk}, image_index) DO NOTHING`, params);
      const explained = results.filter((r) => r.xai);
      if (explained.length > 0) {
        const xaiParams: unknown[] = [];
        const xaiTuples = explained.map((r) => {
          xaiParams.push(id, kind, r.image_index, r.xai!.method, JSON.stringify(r.xai));
          const n = xaiParams.length;
          return `($${n - 4}, $${n - 3}, $${n - 2}, $${n - 1}, $${n}::jsonb)`;
        });
        await tx.query(
          `INSERT INTO xai_results (job_id, job_kind, image_index, method, xai) VALUES ${xaiTuples.join(', ')} ON CONFLICT (job_id, image_index) DO NOTHING`,
          xaiParams,
        );
      }
      return { outcome: 'applied' as const, status: job.status };
    });
  }

  /** The runner's final report. A repeated or late done changes nothing. */
  async applyDone(kind: JobKind, id: string, done: DonePayload): Promise<UpdateOutcome> {
    const { jobs: table, images, fk } = TABLES[kind];
    const metrics = done.status === 'completed' ? done.metrics : null;
    if (done.status === 'completed') {
      // Nothing lost: a job is completed only when every image it processed has its stored result.
      const [{ stored }] = (await this.#ds.query(`SELECT count(*)::int AS stored FROM ${images} WHERE ${fk} = $1`, [id])) as [{ stored: number }];
      const [job] = (await this.#ds.query(`SELECT status FROM ${table} WHERE id = $1`, [id])) as Array<{ status: JobStatus }>;
      if (stored < done.processed_images && job && !isTerminal(job.status)) {
        return { outcome: 'inconsistent', message: `the runner reports ${done.processed_images} processed images but ${stored} results are stored` };
      }
    }
    const sets = [
      `status = $2::varchar`,
      `processed_images = GREATEST(processed_images, $3)`,
      // A failure report keeps the counts the job had: a runner that failed early knows less.
      done.status === 'completed' ? `total_images = $4` : `total_images = GREATEST(total_images, $4)`,
      done.status === 'completed' ? `failed_images = $5` : `failed_images = GREATEST(failed_images, $5)`,
      `results_path = COALESCE($6, results_path)`,
      `timings = COALESCE($7::jsonb, timings)`,
      `error_message = $8`,
      `error_code = $9`,
      `progress_percent = CASE WHEN $2::varchar = 'completed' THEN 100 ELSE progress_percent END`,
      `started_at = COALESCE(started_at, now())`,
      `completed_at = now()`,
      `updated_at = now()`,
    ];
    const params: unknown[] = [
      id,
      done.status,
      done.processed_images,
      done.total_images,
      done.failed_images,
      done.results_path,
      done.timings ? JSON.stringify(done.timings) : null,
      done.status === 'completed' ? null : done.error_message,
      done.status === 'completed' ? null : (done.error_code ?? (done.status === 'failed' ? 'RUNNER_ERROR' : null)),
    ];
    if (kind === 'test_run' && metrics) {
      params.push(
        metrics.primary_metric_name,
        metrics.primary_metric_value,
        JSON.stringify(metrics.overall_metrics),
        JSON.stringify(metrics.per_class_metrics),
        JSON.stringify(metrics.confusion_matrix),
        JSON.stringify(metrics.class_names),
      );
      const n = params.length;
      sets.push(
        `primary_metric_name = $${n - 5}`,
        `primary_metric_value = $${n - 4}`,
        `overall_metrics = $${n - 3}::jsonb`,
        `per_class_metrics = $${n - 2}::jsonb`,
        `confusion_matrix = $${n - 1}::jsonb`,
        `class_names = $${n}::jsonb`,
      );
    }
    const total = done.status === 'completed' ? `$4::int` : `GREATEST(total_images, $4::int)`;
    const rows = (await this.#ds.query(
      notifying(
        kind,
        `UPDATE ${table} SET ${sets.join(', ')} WHERE id = $1 AND status IN ('pending', 'running') AND ${countsHold('GREATEST(processed_images, $3)', total)}`,
      ),
      params,
    )) as Array<{ status: JobStatus }>;
    if (rows.length > 0) return { outcome: 'applied', status: rows[0]!.status };
    const why = await this.#whyNot(kind, id, true);
    // A repeated done is harmless: report the state it already reached.
    return why.outcome === 'terminal' ? { outcome: 'unchanged', status: why.status } : why;
  }

  /** Cancels an active job. */
  async cancel(kind: JobKind, id: string, code: 'CANCELLED_BY_USER' | 'INFERENCE_JOB_DELETED' = 'CANCELLED_BY_USER'): Promise<UpdateOutcome> {
    return this.#finish(kind, id, 'cancelled', code === 'CANCELLED_BY_USER' ? 'cancelled by user' : 'cancelled: its InferenceJob was deleted', code);
  }

  /** Fails an active job for a reason the runner could not report itself (it died, it never started). */
  async failIfActive(kind: JobKind, id: string, reason: string, code: JobErrorCode): Promise<UpdateOutcome> {
    return this.#finish(kind, id, 'failed', reason, code);
  }

  async #finish(kind: JobKind, id: string, status: 'failed' | 'cancelled', message: string, code: JobErrorCode): Promise<UpdateOutcome> {
    const rows = (await this.#ds.query(
      notifying(
        kind,
        `UPDATE ${TABLES[kind].jobs} SET status = $2::varchar, error_message = $3, error_code = $4, completed_at = now(), updated_at = now() WHERE id = $1 AND status IN ('pending', 'running')`,
      ),
      [id, status, message.slice(0, 8000), code],
    )) as Array<{ status: JobStatus }>;
    if (rows.length > 0) return { outcome: 'applied', status };
    return this.#whyNot(kind, id);
  }

  /**
   * Why an update of an active job's row changed nothing: the job is gone or finished, or (with
   * `counts`, for updates guarded by them) the report's counts contradict the job's.
   */
  async #whyNot(kind: JobKind, id: string, counts = false): Promise<UpdateOutcome> {
    const [row] = (await this.#ds.query(`SELECT status, processed_images, total_images FROM ${TABLES[kind].jobs} WHERE id = $1`, [id])) as Array<{
      status: JobStatus;
      processed_images: number;
      total_images: number | null;
    }>;
    if (!row) return { outcome: 'not_found' };
    if (counts && !isTerminal(row.status)) return { outcome: 'inconsistent', message: countsMessage(row) };
    return { outcome: 'terminal', status: row.status };
  }
}
