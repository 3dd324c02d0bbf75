// Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection: the holder
// renews every retry period; another candidate takes over only after the lease expired, with
// an optimistic-concurrency update (resourceVersion), so two replicas never both lead. A leader
// that cannot renew within the renew deadline steps down (`onStoppedLeading`).
import type * as k8s from '@kubernetes/client-node';
import { mergePatch, statusOf } from './client.ts';

export interface LeaderElectionOptions {
  coordination: k8s.CoordinationV1Api;
  namespace: string;
  name: string;
  identity: string;
  leaseDurationSeconds: number;
  renewDeadlineSeconds: number;
  retryPeriodSeconds: number;
  onStartedLeading: () => void | Promise<void>;
  onStoppedLeading: () => void;
  log: (msg: string, extra?: Record<string, unknown>) => void;
}

export class LeaderElector {
  readonly #o: LeaderElectionOptions;
  #leading = false;
  #lastRenew = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  /** The tick under way, which stop() waits for: a renewal in flight must not make a stopped elector lead again. */
  #inFlight: Promise<void> = Promise.resolve();

  constructor(opts: LeaderElectionOptions) {
    this.#o = opts;
  }

  get isLeader(): boolean {
    return this.#leading;
  }

  start(): void {
    this.#schedule(0);
  }

  /** Gives the lease up (so another replica takes over at once) and stops trying. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#inFlight;
    this.#leading = false;
    try {
      const lease = await this.#o.coordination.readNamespacedLease({ name: this.#o.name, namespace: this.#o.namespace });
      if (lease.spec?.holderIdentity === this.#o.identity) await this.#patch(lease, { holderIdentity: null, renewTime: null });
    } catch {
      // expiry releases it anyway
    }
  }

  async #tick(): Promise<void> {
    if (this.#stopped) return;
    try {
      const held = await this.#tryAcquireOrRenew();
      if (held && !this.#stopped) {
        this.#lastRenew = Date.now();
        if (!this.#leading) {
          this.#leading = true;
          this.#o.log('became leader', { lease: `${this.#o.namespace}/${this.#o.name}`, identity: this.#o.identity });
          await this.#o.onStartedLeading();
        }
      }
    } catch (err) {
      this.#o.log('lease update failed', { err: (err as Error).message });
    }
    if (this.#leading && Date.now() - this.#lastRenew > this.#o.renewDeadlineSeconds * 1000) {
      this.#leading = false;
      this.#o.log('lost leadership: could not renew the lease in time');
      this.#o.onStoppedLeading();
      return;
    }
    this.#schedule(this.#o.retryPeriodSeconds * 1000);
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#inFlight = this.#tick();
    }, delayMs);
    this.#timer.unref();
  }

  async #tryAcquireOrRenew(): Promise<boolean> {
    const { coordination, namespace, name, identity, leaseDurationSeconds } = this.#o;
    const now = new Date();
    let lease: k8s.V1Lease;
    try {
      lease = await coordination.readNamespacedLease({ name, namespace });
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
      try {
        // Times are set by the patch below: client-node cannot serialize MicroTime (see #patch).
        lease = await coordination.createNamespacedLease({
          namespace,
          body: { metadata: { name, namespace }, spec: { holderIdentity: identity, leaseDurationSeconds, leaseTransitions: 0 } },
        });
      } catch (createErr) {
        if (statusOf(createErr) === 409) return false;
        throw createErr;
      }
      return this.#patch(lease, { holderIdentity: identity, leaseDurationSeconds, acquireTime: microTime(now), renewTime: microTime(now) });
    }
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity;
    const renewed = spec.renewTime ? new Date(spec.renewTime).getTime() : 0;
    const expired = !holder || renewed + (spec.leaseDurationSeconds ?? leaseDurationSeconds) * 1000 < now.getTime();
    if (holder !== identity && !expired) return false;
    return this.#patch(lease, {
      holderIdentity: identity,
      leaseDurationSeconds,
      renewTime: microTime(now),
      ...(holder !== identity ? { acquireTime: microTime(now), leaseTransitions: (spec.leaseTransitions ?? 0) + 1 } : {}),
    });
  }

  /**
   * A merge patch carrying the resourceVersion read, so it applies only if nobody wrote the
   * Lease since (409 otherwise). Times go as MicroTime strings (six fractional digits), which
   * the API server requires and client-node's Date serialization does not produce.
   */
  async #patch(lease: k8s.V1Lease, spec: Record<string, unknown>): Promise<boolean> {
    try {
      await this.#o.coordination.patchNamespacedLease(
        { name: this.#o.name, namespace: this.#o.namespace, body: { metadata: { resourceVersion: lease.metadata?.resourceVersion }, spec } },
        mergePatch,
      );
      return true;
    } catch (err) {
      if (statusOf(err) === 409) return false; // someone else wrote it first
      throw err;
    }
  }
}

/** RFC 3339 with microseconds, as metav1.MicroTime. */
function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}
