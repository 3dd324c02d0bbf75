// The Kubernetes tier's reconciler. It watches InferenceJobs and the Jobs and Pods it created
// (informers, restarted on error, plus a periodic resync), and reconciles one InferenceJob at a
// time per key, level-triggered and idempotent, in this order:
//   1. deleted?           cancel the run, delete the Job, release the finalizer
//   2. ensure finalizer
//   3. ensure the row     (the REST door created it; the kubectl door creates it here, id = uid)
//   4. active row:        ensure Secret + Job; fail the run if the Job failed or its Pod cannot start
//   5. finished row:      delete a Job that is still running (cancel, or failed by us)
//   6. mirror the row into status, with an Event for each phase change
// Database changes reach it through Postgres LISTEN/NOTIFY (`enqueueJob`).
import * as k8s from '@kubernetes/client-node';
import { isTerminal, type JobKind } from '../../contract/index.ts';
import type { Job, JobStore } from '../../db/job-store.ts';
import type { Logger } from '../../http/logger.ts';
import { mergePatch, statusOf, type KubeClients } from '../../kube/client.ts';
import { API_VERSION, FINALIZER, GROUP, JOB_ID_ANNOTATION, keyOf, KIND, LABELS, MANAGED_BY, PLURAL, VERSION, type InferenceJob, type InferenceJobSpec, type InferenceJobStatus } from '../../kube/inference-job.ts';
import { WorkQueue } from '../../kube/work-queue.ts';
import { runnerEnvFor, type RunnerSettings } from '../runner-env.ts';
import type { TokenIssuer } from '../token-issuer.ts';
import { buildJob, buildSecret, jobNameFor, type RunnerPodSettings } from './job-spec.ts';
import { jobFailure, podNotStarting, statusFor } from './observed-state.ts';

export interface KubeControllerOptions {
  clients: KubeClients;
  store: JobStore;
  tokens: TokenIssuer;
  runner: RunnerSettings;
  pod: RunnerPodSettings;
  /** A runner Pod not started after this long fails its job (image pull errors, unschedulable...). */
  podStartTimeoutMs: number;
  /** Every InferenceJob is reconciled at least this often, whatever the watches say. */
  resyncMs: number;
  /** A finalizer is released after this long even if cleanup keeps failing. */
  finalizerGiveUpMs: number;
  /**
   * The API server ends every watch after at most 2 x --min-request-timeout (60 min by default)
   * and the informer reconnects: a watch without a reconnect for longer has gone silent.
   */
  watchSilenceMs: number;
  identity: string;
  log: Logger;
}

type Informer<T extends k8s.KubernetesObject> = k8s.Informer<T> & k8s.ObjectCache<T>;

const kindOf = (spec: InferenceJobSpec): JobKind => (spec.type === 'test_run' ? 'test_run' : 'inference_job');
const jobFinished = (job: k8s.V1Job) => Boolean(job.status?.conditions?.some((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True'));

export class KubeController {
  readonly #o: KubeControllerOptions;
  readonly #queue: WorkQueue;
  /** Database job id -> InferenceJob key, to route NOTIFY events. */
  readonly #keyByJobId = new Map<string, string>();
  #ij: Informer<InferenceJob> | undefined;
  #jobs: Informer<k8s.V1Job> | undefined;
  #pods: Informer<k8s.V1Pod> | undefined;
  #resync: NodeJS.Timeout | undefined;
  #stopped = false;
  readonly #lastConnect = new Map<Informer<k8s.KubernetesObject>, number>();

  constructor(opts: KubeControllerOptions) {
    this.#o = opts;
    this.#queue = new WorkQueue((key) => this.#reconcile(key), {
      // Reconciles wait on the API server and Postgres, not on this CPU.
      workers: 16,
      baseDelayMs: 200,
      maxDelayMs: 30_000,
      onError: (key, err) => opts.log.warn({ inferencejob: key, err: (err as Error).message }, 'reconcile failed; will retry'),
    });
  }

  async start(): Promise<void> {
    const { kc, custom, batch, core } = this.#o.clients;
    const selector = `${LABELS.managedBy}=${MANAGED_BY}`;
    this.#ij = this.#informer(
      k8s.makeInformer<InferenceJob>(kc, `/apis/${GROUP}/${VERSION}/${PLURAL}`, () =>
        custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL }) as Promise<k8s.KubernetesListObject<InferenceJob>>,
      ),
      (ij) => ij,
    );
    this.#jobs = this.#informer(k8s.makeInformer<k8s.V1Job>(kc, '/apis/batch/v1/jobs', () => batch.listJobForAllNamespaces({ labelSelector: selector }), selector), (o) => this.#ownerOf(o));
    this.#pods = this.#informer(k8s.makeInformer<k8s.V1Pod>(kc, '/api/v1/pods', () => core.listPodForAllNamespaces({ labelSelector: selector }), selector), (o) => this.#ownerOf(o));
    await Promise.all([this.#ij.start(), this.#jobs.start(), this.#pods.start()]);
    for (const ij of this.#ij.list()) this.#queue.add(keyOf(ij));
    this.#resync = setInterval(() => {
      this.#restartSilentWatches();
      for (const ij of this.#ij?.list() ?? []) this.#queue.add(keyOf(ij));
    }, this.#o.resyncMs);
    this.#resync.unref();
    this.#o.log.info({ identity: this.#o.identity }, 'kubernetes controller started');
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#resync);
    this.#queue.stop();
    await Promise.all([this.#ij?.stop(), this.#jobs?.stop(), this.#pods?.stop()]);
  }

  /** A database change (NOTIFY) for a job: reconcile its InferenceJob. */
  enqueueJob(jobId: string): void {
    const key = this.#keyByJobId.get(jobId);
    if (key) this.#queue.add(key);
  }

  /** Routes an owned Job or Pod to its InferenceJob. */
  #ownerOf(o: k8s.V1Job | k8s.V1Pod): { metadata: { namespace?: string; name?: string } } | undefined {
    const jobId = o.metadata?.labels?.[LABELS.jobId];
    const key = jobId && this.#keyByJobId.get(jobId);
    if (!key) return undefined;
    const [namespace, name] = key.split('/');
    return { metadata: { namespace, name } };
  }

  #informer<T extends k8s.KubernetesObject>(informer: Informer<T>, toIj: (o: T) => { metadata?: { namespace?: string; name?: string } } | undefined): Informer<T> {
    const enqueue = (o: T) => {
      const ij = toIj(o);
      if (ij) this.#queue.add(keyOf(ij));
    };
    informer.on('add', enqueue);
    informer.on('update', enqueue);
    informer.on('delete', enqueue);
    const seen = informer as unknown as Informer<k8s.KubernetesObject>;
    this.#lastConnect.set(seen, Date.now());
    informer.on('connect', () => this.#lastConnect.set(seen, Date.now()));
    informer.on('error', (err) => {
      // makeInformer stops on errors other than 410 Gone: restart it, the resync covers the gap.
      this.#o.log.warn({ err: (err as Error)?.message }, 'watch failed; restarting informer');
      if (!this.#stopped) setTimeout(() => void informer.start().catch(() => undefined), 1000).unref();
    });
    return informer;
  }

  #restartSilentWatches(): void {
    for (const [informer, at] of this.#lastConnect) {
      if (Date.now() - at < this.#o.watchSilenceMs) continue;
      this.#o.log.warn({ silent_ms: Date.now() - at }, 'watch silent for too long; restarting informer');
      this.#lastConnect.set(informer, Date.now());
      void informer.stop().then(() => informer.start()).catch(() => undefined);
    }
  }

  async #reconcile(key: string): Promise<void> {
    const [namespace, name] = key.split('/') as [string, string];
    const ij = this.#ij?.get(name, namespace);
    if (!ij) {
      for (const [jobId, k] of this.#keyByJobId) if (k === key) this.#keyByJobId.delete(jobId);
      return;
    }
    const kind = kindOf(ij.spec);
    const jobId = ij.metadata.annotations?.[JOB_ID_ANNOTATION] ?? ij.metadata.uid;
    this.#keyByJobId.set(jobId, key);
    const log = this.#o.log.child({ job_id: jobId, inferencejob: key });

    if (ij.metadata.deletionTimestamp) return this.#finalize(ij, kind, jobId, log);
    await this.#ensureFinalizer(ij);
    let row = (await this.#o.store.get(kind, jobId)) ?? (await this.#createRow(ij, kind, jobId));
    const jobName = jobNameFor(jobId);
    const job = this.#jobs?.get(jobName, namespace);
    const pods = (this.#pods?.list(namespace) ?? []).filter((p) => p.metadata?.labels?.[LABELS.jobId] === jobId);

    if (!isTerminal(row.status)) {
      if (!job) await this.#createRunner(ij, kind, row, log);
      else await this.#failIfStuck(ij, kind, jobId, job, pods, log);
      row = (await this.#o.store.get(kind, jobId))!;
    }
    if (row.status === 'cancelled' && job && !jobFinished(job) && !job.metadata?.deletionTimestamp) {
      await this.#deleteJob(namespace, jobName);
      log.info('runner Job deleted: the run was cancelled');
    }
    const hadJob = Boolean(job) || !isTerminal(row.status) || Boolean(ij.status?.jobName);
    const jobFailed = job?.status?.conditions?.find((c) => c.type === 'Failed' && c.status === 'True');
    await this.#writeStatus(ij, statusFor(row, hadJob ? jobName : undefined, ij.status, jobFailed));
  }

  async #createRow(ij: InferenceJob, kind: JobKind, jobId: string): Promise<Job> {
    const { store } = this.#o;
    const { spec } = ij;
    const common = {
      checkpoint_path: spec.checkpointPath,
      task_type: spec.taskType as Job['task_type'],
      name: ij.metadata.name,
      enable_xai: spec.xai?.enabled ?? false,
      xai_method: (spec.xai?.method ?? null) as Job['xai_method'],
      xai_config: spec.xai ? { target_layer: spec.xai.targetLayer ?? null, num_samples: spec.xai.numSamples ?? null } : null,
    };
    if (kind === 'test_run') {
      return store.ensureTestRun(jobId, { ...common, dataset_path: spec.dataset!.path, dataset_split: spec.dataset!.split ?? 'test', training_job_id: null }, 'kubernetes', keyOf(ij));
    }
    const input = spec.input!;
    const [inference_type, input_config] = input.imagePath
      ? (['single', { image_path: input.imagePath }] as const)
      : input.imagePaths
        ? (['batch', { image_paths: input.imagePaths }] as const)
        : (['dataset', { dataset_path: input.datasetPath! }] as const);
    return store.ensureInferenceJob(jobId, { ...common, inference_type, input_config }, 'kubernetes', keyOf(ij));
  }

  async #createRunner(ij: InferenceJob, kind: JobKind, row: Job, log: Logger): Promise<void> {
    const { core, batch } = this.#o.clients;
    const namespace = ij.metadata.namespace;
    const env = runnerEnvFor(kind, row, this.#o.runner, this.#o.tokens);
    // Together: the Pod needs the Secret only when it starts, and the kubelet waits for it.
    // An existing Secret keeps its token: the Job may already be running with it.
    const [, created] = await Promise.all([
      ignoreConflict(core.createNamespacedSecret({ namespace, body: buildSecret(ij, row.id, env) })),
      ignoreConflict(batch.createNamespacedJob({ namespace, body: buildJob(ij, row.id, env, this.#o.pod) })),
    ]);
    if (!created) return;
    log.info({ job: jobNameFor(row.id) }, 'runner Job created');
    void this.#event(ij, 'Normal', 'JobCreated', `Created Job ${jobNameFor(row.id)}`);
  }

  /** A Job that failed, or a runner Pod that cannot start, fails the run with the reason. */
  async #failIfStuck(ij: InferenceJob, kind: JobKind, jobId: string, job: k8s.V1Job, pods: k8s.V1Pod[], log: Logger): Promise<void> {
    const failure = jobFailure(job, pods);
    if (failure) {
      if ((await this.#o.store.failIfActive(kind, jobId, failure)).outcome === 'applied') log.warn({ reason: failure }, 'run failed: its Job failed');
      return;
    }
    const stuck = podNotStarting(pods);
    if (!stuck) return;
    const waited = Date.now() - stuck.since.getTime();
    if (waited < this.#o.podStartTimeoutMs) {
      this.#queue.addAfter(keyOf(ij), this.#o.podStartTimeoutMs - waited + 100);
      return;
    }
    const reason = `runner Pod did not start within ${Math.round(this.#o.podStartTimeoutMs / 1000)}s: ${stuck.reason}${stuck.message ? `: ${stuck.message}` : ''}`;
    if ((await this.#o.store.failIfActive(kind, jobId, reason)).outcome === 'applied') log.warn({ reason }, 'run failed: its Pod never started');
    // Nothing will run: stop the image pulls and scheduling attempts.
    await this.#deleteJob(ij.metadata.namespace, jobNameFor(jobId));
  }

  async #finalize(ij: InferenceJob, kind: JobKind, jobId: string, log: Logger): Promise<void> {
    if (!ij.metadata.finalizers?.includes(FINALIZER)) return;
    try {
      const outcome = await this.#o.store.cancel(kind, jobId);
      if (outcome.outcome === 'applied') log.info('run cancelled: its InferenceJob was deleted');
      await this.#deleteJob(ij.metadata.namespace, jobNameFor(jobId));
    } catch (err) {
      const pendingMs = Date.now() - new Date(ij.metadata.deletionTimestamp!).getTime();
      if (pendingMs < this.#o.finalizerGiveUpMs) throw err;
      log.error({ err: (err as Error).message }, 'cleanup keeps failing; releasing the finalizer anyway');
    }
    await this.#patchFinalizers(ij, (ij.metadata.finalizers ?? []).filter((f) => f !== FINALIZER));
  }

  async #ensureFinalizer(ij: InferenceJob): Promise<void> {
    if (ij.metadata.finalizers?.includes(FINALIZER)) return;
    await this.#patchFinalizers(ij, [...(ij.metadata.finalizers ?? []), FINALIZER]);
  }

  async #patchFinalizers(ij: InferenceJob, finalizers: string[]): Promise<void> {
    try {
      await this.#o.clients.custom.patchNamespacedCustomObject(
        // resourceVersion makes it a compare-and-swap: a concurrent edit of the list is not lost.
        { group: GROUP, version: VERSION, plural: PLURAL, namespace: ij.metadata.namespace, name: ij.metadata.name, body: { metadata: { finalizers, resourceVersion: ij.metadata.resourceVersion } } },
        mergePatch,
      );
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
    }
  }

  async #deleteJob(namespace: string, name: string): Promise<void> {
    try {
      await this.#o.clients.batch.deleteNamespacedJob({ name, namespace, propagationPolicy: 'Background' });
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
    }
  }

  async #writeStatus(ij: InferenceJob, status: InferenceJobStatus): Promise<void> {
    const before = ij.status ?? {};
    if (JSON.stringify(strip(before)) === JSON.stringify(strip(status))) return;
    try {
      await this.#o.clients.custom.patchNamespacedCustomObjectStatus(
        { group: GROUP, version: VERSION, plural: PLURAL, namespace: ij.metadata.namespace, name: ij.metadata.name, body: { status: { ...status, observedGeneration: ij.metadata.generation } } },
        mergePatch,
      );
    } catch (err) {
      if (statusOf(err) === 404) return;
      throw err;
    }
    if (status.phase !== before.phase && status.phase !== 'Pending') {
      const warning = status.phase === 'Failed';
      void this.#event(ij, warning ? 'Warning' : 'Normal', status.phase!, status.message ?? `${status.progress} images`);
    }
  }

  /** Best effort, off the reconcile path: an Event that cannot be written is logged. */
  async #event(ij: InferenceJob, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const now = new Date();
    try {
      await this.#o.clients.core.createNamespacedEvent({
        namespace: ij.metadata.namespace,
        body: {
          metadata: { generateName: `${ij.metadata.name}.`, namespace: ij.metadata.namespace },
          involvedObject: { apiVersion: API_VERSION, kind: KIND, name: ij.metadata.name, namespace: ij.metadata.namespace, uid: ij.metadata.uid },
          type,
          reason,
          message: message.slice(0, 1024),
          source: { component: 'kinfer-controller' },
          reportingComponent: 'kinfer-controller',
          reportingInstance: this.#o.identity,
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      });
    } catch (err) {
      this.#o.log.warn({ err: (err as Error).message, reason }, 'could not record an Event');
    }
  }
}

/** Status without the fields that change on every write, for comparison. */
function strip(status: InferenceJobStatus): InferenceJobStatus {
  const { observedGeneration: _, ...rest } = status;
  return rest;
}

async function ignoreConflict<T>(call: Promise<T>): Promise<T | undefined> {
  try {
    return await call;
  } catch (err) {
    if (statusOf(err) === 409) return undefined;
    throw err;
  }
}
