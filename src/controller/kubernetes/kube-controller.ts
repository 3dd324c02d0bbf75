// The Kubernetes tier's reconcile loop. It watches InferenceJobs and the Jobs and Pods it created
// (informers, restarted on error, plus a periodic resync) and reconciles one InferenceJob at a
// time per key, level-triggered and idempotent: observe (observe.ts) -> decide (decide.ts, pure,
// with the injected clock) -> act (act.ts). Database changes reach it through Postgres
// LISTEN/NOTIFY (`enqueueJob`).
import * as k8s from '@kubernetes/client-node';
import type { JobStore } from '../../db/job-store.ts';
import type { Logger } from '../../http/logger.ts';
import { ignoring, type KubeClients } from '../../kube/client.ts';
import { GROUP, keyOf, LABELS, MANAGED_BY, PLURAL, VERSION, type InferenceJob } from '../../kube/inference-job.ts';
import { WorkQueue } from '../../kube/work-queue.ts';
import type { Admission } from '../admission/admission.ts';
import type { RunnerSettings } from '../job-mapping.ts';
import type { TokenIssuer } from '../token-issuer.ts';
import { act } from './act.ts';
import { decide, type DecideOptions } from './decide.ts';
import type { EventBudget } from './event-budget.ts';
import { jobNameFor, type RunnerPodSettings } from './job-spec.ts';
import { jobIdOf, observe } from './observe.ts';

export interface KubeControllerOptions extends DecideOptions {
  clients: KubeClients;
  store: JobStore;
  admission: Admission;
  tokens: TokenIssuer;
  runner: RunnerSettings;
  pod: RunnerPodSettings;
  /** Every InferenceJob is reconciled at least this often, whatever the watches say. */
  resyncMs: number;
  /**
   * The API server ends every watch after at most 2 x --min-request-timeout (60 min by default)
   * and the informer reconnects: a watch without a reconnect for longer has gone silent.
   */
  watchSilenceMs: number;
  identity: string;
  /** Which Events are written (Normal ones under a rate); absent: all. */
  events?: EventBudget | undefined;
  log: Logger;
  now?: () => Date;
}

type Informer<T extends k8s.KubernetesObject> = k8s.Informer<T> & k8s.ObjectCache<T>;

export class KubeController {
  readonly #o: KubeControllerOptions;
  readonly #now: () => Date;
  readonly #queue: WorkQueue;
  /** Database job id -> InferenceJob key, to route NOTIFY events and owned objects. */
  readonly #keyByJobId = new Map<string, string>();
  #ij: Informer<InferenceJob> | undefined;
  #jobs: Informer<k8s.V1Job> | undefined;
  #pods: Informer<k8s.V1Pod> | undefined;
  #resync: NodeJS.Timeout | undefined;
  #stopped = false;
  readonly #lastConnect = new Map<Informer<k8s.KubernetesObject>, number>();

  constructor(opts: KubeControllerOptions) {
    this.#o = opts;
    this.#now = opts.now ?? (() => new Date());
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
      k8s.makeInformer<InferenceJob>(
        kc,
        `/apis/${GROUP}/${VERSION}/${PLURAL}`,
        () => custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL }) as Promise<k8s.KubernetesListObject<InferenceJob>>,
      ),
      (ij) => ij,
    );
    this.#jobs = this.#informer(
      k8s.makeInformer<k8s.V1Job>(kc, '/apis/batch/v1/jobs', () => batch.listJobForAllNamespaces({ labelSelector: selector }), selector),
      (o) => this.#ownerOf(o),
    );
    this.#pods = this.#informer(
      k8s.makeInformer<k8s.V1Pod>(kc, '/api/v1/pods', () => core.listPodForAllNamespaces({ labelSelector: selector }), selector),
      (o) => this.#ownerOf(o),
    );
    await Promise.all([this.#ij.start(), this.#jobs.start(), this.#pods.start()]);
    this.enqueueAll();
    this.#resync = setInterval(() => {
      this.#restartSilentWatches();
      this.enqueueAll();
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

  /**
   * Every InferenceJob to be reconciled: at start, at each resync, and when the database's
   * notifications are heard again after a time they were not (what changed meanwhile was never told).
   */
  enqueueAll(): void {
    for (const ij of this.#ij?.list() ?? []) this.#queue.add(keyOf(ij));
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

  #informer<T extends k8s.KubernetesObject>(
    informer: Informer<T>,
    toIj: (o: T) => { metadata?: { namespace?: string; name?: string } } | undefined,
  ): Informer<T> {
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
      void informer
        .stop()
        .then(() => informer.start())
        .catch(() => undefined);
    }
  }

  async #reconcile(key: string): Promise<void> {
    const [namespace, name] = key.split('/') as [string, string];
    const ij = this.#ij?.get(name, namespace);
    if (!ij) {
      for (const [jobId, k] of this.#keyByJobId) if (k === key) this.#keyByJobId.delete(jobId);
      return;
    }
    const jobId = jobIdOf(ij);
    this.#keyByJobId.set(jobId, key);
    const log = this.#o.log.child({ job_id: jobId, inferencejob: key, resource_version: ij.metadata.resourceVersion });
    const observed = await observe(
      ij,
      {
        store: this.#o.store,
        admission: this.#o.admission,
        current: (ns, n) =>
          ignoring(
            [404],
            this.#o.clients.custom.getNamespacedCustomObject({
              group: GROUP,
              version: VERSION,
              plural: PLURAL,
              namespace: ns,
              name: n,
            }) as Promise<InferenceJob>,
          ),
        job: (ns, jobName) => this.#jobs?.get(jobName, ns),
        pods: (ns, id) => (this.#pods?.list(ns) ?? []).filter((p) => p.metadata?.labels?.[LABELS.jobId] === id),
      },
      jobNameFor(jobId),
    );
    const actions = decide(observed, this.#o, this.#now());
    if (actions.length > 0) log.debug({ actions: actions.map((a) => a.type) }, 'reconcile');
    const { requeueAfterMs } = await act(observed, actions, { ...this.#o, log });
    // Now (a row was just created: on to the Job) or later (a Pod's start-up timeout).
    if (requeueAfterMs === 0) this.#queue.add(key);
    else if (requeueAfterMs !== undefined) this.#queue.addAfter(key, requeueAfterMs);
  }
}
