// The Kubernetes tier: InferenceJobs reconciled into batch/v1 Jobs by the leader among the
// controller replicas; every replica serves the REST API (whose jobs become InferenceJobs).
import type { JobKind } from '../../contract/index.ts';
import type { Job, JobStore } from '../../db/job-store.ts';
import { listenForReconciles } from '../../db/job-events.ts';
import type { Logger } from '../../http/logger.ts';
import { kubeClients, type KubeClientLimits, type KubeClients } from '../../kube/client.ts';
import { API_VERSION, FINALIZER, GROUP, JOB_ID_ANNOTATION, KIND, LABELS, PLURAL, VERSION } from '../../kube/inference-job.ts';
import { LeaderElector } from '../../kube/leader-election.ts';
import type { Admission } from '../admission/admission.ts';
import { specFromRow, type RunnerSettings } from '../job-mapping.ts';
import type { Tier } from '../tier.ts';
import type { TokenIssuer } from '../token-issuer.ts';
import type { RunnerPodSettings } from './job-spec.ts';
import { EventBudget } from './event-budget.ts';
import { inferenceJobAdmissionCheck } from './inference-job-admission.ts';
import { KubeController } from './kube-controller.ts';

/** The InferenceJob of a REST-submitted job: the whole id in the name, so names never collide. */
export function inferenceJobNameFor(kind: JobKind, jobId: string): string {
  return `${kind === 'test_run' ? 'test-run' : 'inference'}-${jobId}`;
}

/**
 * The InferenceJob that mirrors a REST-submitted job. It carries the cleanup finalizer from its
 * creation: the controller would add it on its first reconcile anyway, and written here it costs
 * no PATCH (one API write and one watch event fewer a job).
 */
export function inferenceJobFor(kind: JobKind, row: Job, namespace: string) {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: {
      name: inferenceJobNameFor(kind, row.id),
      namespace,
      annotations: { [JOB_ID_ANNOTATION]: row.id },
      labels: { [LABELS.jobId]: row.id },
      finalizers: [FINALIZER],
    },
    spec: specFromRow(kind, row),
  };
}

/** One system, two doors: a job submitted through the REST API also becomes an InferenceJob. */
async function createInferenceJobFor(clients: KubeClients, namespace: string, kind: JobKind, row: Job): Promise<string> {
  const body = inferenceJobFor(kind, row, namespace);
  await clients.custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, body });
  return `${namespace}/${body.metadata.name}`;
}

export interface KubernetesTierOptions {
  store: JobStore;
  admission: Admission;
  databaseUrl: string;
  tokens: TokenIssuer;
  runner: RunnerSettings;
  pod: RunnerPodSettings;
  kubeconfig: string | undefined;
  /** The controller's request rate towards the API server. */
  kubeClient: KubeClientLimits;
  /** Normal Events a second (and burst) the controller writes; Warnings always. */
  events: { qps: number; burst: number };
  /** Where REST-submitted InferenceJobs and the leader Lease live. */
  namespace: string;
  identity: string;
  podStartTimeoutMs: number;
  runnerStallMs: number;
  leaderElection: { enabled: boolean; leaseDurationSeconds: number };
  log: Logger;
}

export async function startKubernetesTier(o: KubernetesTierOptions): Promise<Tier> {
  const clients = kubeClients(o.kubeconfig, o.kubeClient);
  const controller = new KubeController({
    clients,
    store: o.store,
    admission: o.admission,
    tokens: o.tokens,
    runner: o.runner,
    pod: o.pod,
    podStartTimeoutMs: o.podStartTimeoutMs,
    runnerStallMs: o.runnerStallMs,
    resyncMs: 30_000,
    finalizerGiveUpMs: 120_000,
    watchSilenceMs: 65 * 60_000,
    identity: o.identity,
    events: new EventBudget({ ...o.events, log: o.log }),
    log: o.log,
  });
  const events = listenForReconciles(o.databaseUrl, controller, o.log);
  const lease = o.leaderElection.leaseDurationSeconds;
  const elector = o.leaderElection.enabled
    ? new LeaderElector({
        coordination: clients.coordination,
        namespace: o.namespace,
        name: 'kinfer-controller',
        identity: o.identity,
        leaseDurationSeconds: lease,
        renewDeadlineSeconds: Math.max(1, Math.floor((lease * 2) / 3)),
        retryPeriodSeconds: Math.max(1, Math.floor(lease / 5)),
        onStartedLeading: () => controller.start(),
        onStoppedLeading: () => {
          // As controller-runtime: a replica that lost the lease exits, and is restarted clean.
          o.log.fatal('lost the leader lease; exiting');
          process.exit(1);
        },
        log: (msg, extra) => o.log.info(extra ?? {}, msg),
      })
    : undefined;
  if (elector) elector.start();
  else await controller.start();
  return {
    onCreated: async (kind, job) => {
      const ref = await createInferenceJobFor(clients, o.namespace, kind, job);
      await o.store.setExecutorRef(kind, job.id, ref, 'kubernetes');
    },
    // The cancel is in the database already; its NOTIFY brings the leader to delete the Job.
    onCancelled: async () => undefined,
    // Its InferenceJob goes with it: left behind without its run, it would be admitted again.
    onDeleted: async (_kind, job) => {
      const [namespace, name] = job.executor_ref?.split('/') ?? [];
      if (job.executor !== 'kubernetes' || !namespace || !name) return;
      try {
        await clients.custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, name });
      } catch (err) {
        if ((err as { code?: number }).code !== 404) throw err;
      }
    },
    ready: inferenceJobAdmissionCheck(clients.custom, o.namespace),
    stop: async () => {
      await elector?.stop();
      await controller.stop();
      await events.stop();
      await clients.kc.close();
    },
  };
}
