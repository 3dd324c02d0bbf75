// Does what decide.ts decided, in order, against the API server and Postgres. Creations that
// find their object already there (409) are done; deletions of what is gone (404) are done.
// Actions marked bestEffort (cleanup past the finalizer's give-up time) log their failure
// instead of failing the reconcile.
import type * as k8s from '@kubernetes/client-node';
import type { JobStore } from '../../db/job-store.ts';
import type { Logger } from '../../http/logger.ts';
import { ignoring, mergePatch, type KubeClients } from '../../kube/client.ts';
import {
  API_VERSION,
  CREATED_BY_ANNOTATION,
  FINALIZER,
  GROUP,
  keyOf,
  KIND,
  PLURAL,
  VERSION,
  type InferenceJob,
  type InferenceJobStatus,
} from '../../kube/inference-job.ts';
import { runnerEnvFor, type RunnerSettings } from '../job-mapping.ts';
import type { TokenIssuer } from '../token-issuer.ts';
import type { Action, Observed } from './decide.ts';
import type { EventBudget } from './event-budget.ts';
import { buildJob, buildSecret, jobNameFor, type RunnerPodSettings } from './job-spec.ts';

export interface ActContext {
  clients: KubeClients;
  store: JobStore;
  tokens: TokenIssuer;
  runner: RunnerSettings;
  pod: RunnerPodSettings;
  identity: string;
  /** Which Events are written (Normal ones under a rate); absent: all. */
  events?: EventBudget | undefined;
  log: Logger;
}

/** Performs the actions; returns when to look again, if decide asked. */
export async function act(o: Observed, actions: Action[], ctx: ActContext): Promise<{ requeueAfterMs?: number }> {
  const { ij } = o;
  const namespace = ij.metadata.namespace;
  const log = ctx.log;
  let env: Record<string, string> | undefined;
  const runnerEnv = () => (env ??= runnerEnvFor(o.kind, o.row!, ctx.runner, ctx.tokens.issue(o.kind, o.row!.id)));
  let requeueAfterMs: number | undefined;
  for (const action of actions) {
    const run = async () => {
      switch (action.type) {
        case 'addFinalizer':
          return patchFinalizers(ctx, ij, [...(ij.metadata.finalizers ?? []), FINALIZER]);
        case 'removeFinalizer':
          return patchFinalizers(
            ctx,
            ij,
            (ij.metadata.finalizers ?? []).filter((f) => f !== FINALIZER),
          );
        case 'createRow': {
          // Owned by its namespace: Kubernetes RBAC governs it there; REST callers see it by group,
          // and its creator (the admission policy's checked annotation) as their own.
          const owned = { namespace, created_by: ij.metadata.annotations?.[CREATED_BY_ANNOTATION] ?? null };
          if (action.job.kind === 'test_run') await ctx.store.ensureTestRun(o.jobId, { ...action.job.row, ...owned }, 'kubernetes', keyOf(ij));
          else await ctx.store.ensureInferenceJob(o.jobId, { ...action.job.row, ...owned }, 'kubernetes', keyOf(ij));
          return log.info('run created: its InferenceJob passed admission');
        }
        case 'createSecret':
          // An existing Secret keeps its token: the Job may already be running with it.
          return void (await ignoring([409], ctx.clients.core.createNamespacedSecret({ namespace, body: buildSecret(ij, o.jobId, runnerEnv()) })));
        case 'createJob':
          if (await ignoring([409], ctx.clients.batch.createNamespacedJob({ namespace, body: buildJob(ij, o.jobId, runnerEnv(), ctx.pod) })))
            log.info({ job: jobNameFor(o.jobId) }, 'runner Job created');
          return;
        case 'failRun':
          if ((await ctx.store.failIfActive(o.kind, o.jobId, action.reason, action.code)).outcome === 'applied')
            log.warn({ reason: action.reason, code: action.code }, 'run failed');
          return;
        case 'cancelRun':
          if ((await ctx.store.cancel(o.kind, o.jobId, 'INFERENCE_JOB_DELETED')).outcome === 'applied') log.info('run cancelled: its InferenceJob was deleted');
          return;
        case 'deleteJob':
          await ignoring([404], ctx.clients.batch.deleteNamespacedJob({ name: jobNameFor(o.jobId), namespace, propagationPolicy: 'Background' }));
          return log.info({ why: action.why }, 'runner Job deleted');
        case 'patchStatus':
          return patchStatus(ctx, ij, action.status);
        case 'event':
          return recordEvent(ctx, ij, action.eventType, action.reason, action.message);
        case 'requeueAfter':
          requeueAfterMs = Math.min(requeueAfterMs ?? Infinity, action.ms);
          return;
      }
    };
    try {
      await run();
    } catch (err) {
      if (!('bestEffort' in action && action.bestEffort)) throw err;
      log.error({ err: (err as Error).message, action: action.type }, 'cleanup keeps failing; going on without it');
    }
  }
  return requeueAfterMs === undefined ? {} : { requeueAfterMs };
}

async function patchFinalizers(ctx: ActContext, ij: InferenceJob, finalizers: string[]): Promise<void> {
  // resourceVersion makes it a compare-and-swap: a concurrent edit of the list is not lost.
  const body = { metadata: { finalizers, resourceVersion: ij.metadata.resourceVersion } };
  await ignoring(
    [404],
    ctx.clients.custom.patchNamespacedCustomObject(
      { group: GROUP, version: VERSION, plural: PLURAL, namespace: ij.metadata.namespace, name: ij.metadata.name, body },
      mergePatch,
    ),
  );
}

async function patchStatus(ctx: ActContext, ij: InferenceJob, status: InferenceJobStatus): Promise<void> {
  // A merge patch replaces lists whole: the conditions written are exactly the ones decided.
  const body = { status: { ...status, observedGeneration: ij.metadata.generation } };
  await ignoring(
    [404],
    ctx.clients.custom.patchNamespacedCustomObjectStatus(
      { group: GROUP, version: VERSION, plural: PLURAL, namespace: ij.metadata.namespace, name: ij.metadata.name, body },
      mergePatch,
    ),
  );
}

/** Best effort: an Event that cannot be written is logged, never a failed reconcile. */
async function recordEvent(ctx: ActContext, ij: InferenceJob, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
  // Keyed without the message: each Event written here marks a step an InferenceJob takes once
  // (Invalid, JobCreated, a phase), and a repeat from a stale copy may count other progress.
  if (ctx.events && !ctx.events.allows(type, [ij.metadata.uid, type, reason].join('\u0000'))) return;
  const now = new Date();
  const event: k8s.CoreV1Event = {
    metadata: { generateName: `${ij.metadata.name}.`, namespace: ij.metadata.namespace },
    involvedObject: { apiVersion: API_VERSION, kind: KIND, name: ij.metadata.name, namespace: ij.metadata.namespace, uid: ij.metadata.uid },
    type,
    reason,
    message: message.slice(0, 1024),
    source: { component: 'kinfer-controller' },
    reportingComponent: 'kinfer-controller',
    reportingInstance: ctx.identity,
    firstTimestamp: now,
    lastTimestamp: now,
    count: 1,
  };
  try {
    await ctx.clients.core.createNamespacedEvent({ namespace: ij.metadata.namespace, body: event });
  } catch (err) {
    ctx.log.warn({ err: (err as Error).message, reason }, 'could not record an Event');
  }
}
