// Kubernetes API access: KUBECONFIG (or ~/.kube/config), else the in-cluster service account.
import { createHash } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import { Agent, type Dispatcher } from 'undici';
import { TokenBucket } from './token-bucket.ts';

export interface KubeClients {
  kc: PooledKubeConfig;
  core: k8s.CoreV1Api;
  batch: k8s.BatchV1Api;
  custom: k8s.CustomObjectsApi;
  coordination: k8s.CoordinationV1Api;
}

/** A client's request rate towards the API server, as client-go's rest.Config QPS and Burst. */
export interface KubeClientLimits {
  qps: number;
  burst: number;
}

type RequestContext = Parameters<k8s.KubeConfig['applySecurityAuthentication']>[0];
type DispatcherOptions = ReturnType<k8s.KubeConfig['createDispatcherOptions']>;
type MadeOptions = { key: string; options: DispatcherOptions };

/** What client-node's authentication put on a request: its headers and its dispatcher. */
interface Authentication {
  headers: Record<string, string>;
  dispatcher: Dispatcher | undefined;
}

/**
 * How long one authentication serves requests. client-node 2.0 reads the kubeconfig's
 * certificate files and builds a new undici Agent for every request, so every API call opened a
 * new TLS connection: a handshake, a secure context, the files read again (together about a fifth
 * of the controller's CPU in bench:controller). client-go caches its transport per config and
 * re-reads rotated credentials on a timer; here the authentication is redone at most this often.
 */
const AUTHENTICATION_REUSE_MS = 10_000;

/**
 * A KubeConfig whose requests share kept-alive connections: one undici Agent per set of TLS
 * options (a rotated client certificate gets its own). The Agent speaks HTTP/1.1: with many small
 * requests Node's HTTP/2 cost the controller and the API server more CPU (bench:controller,
 * 2026-12-02: API server 35 vs 40 ms, controller 22 vs 24 ms per InferenceJob). Every request,
 * watches included, first takes a token of the client's QPS/burst bucket.
 */
export class PooledKubeConfig extends k8s.KubeConfig {
  readonly #agents = new Map<string, Dispatcher>();
  readonly #bucket: TokenBucket | undefined;
  #authentication: { at: number; result: Promise<Authentication> } | undefined;
  /** The options the Agent about to be set was made from (set synchronously just before). */
  #options: MadeOptions | undefined;

  constructor(limits?: KubeClientLimits) {
    super();
    this.#bucket = limits && new TokenBucket(limits.qps, limits.burst);
  }

  override createDispatcherOptions(...args: Parameters<k8s.KubeConfig['createDispatcherOptions']>): DispatcherOptions {
    const options = super.createDispatcherOptions(...args);
    this.#options = { key: createHash('sha256').update(JSON.stringify(options)).digest('hex'), options };
    return options;
  }

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await this.#bucket?.take();
    const now = performance.now();
    if (!this.#authentication || now - this.#authentication.at >= AUTHENTICATION_REUSE_MS) {
      const result = this.#authenticate();
      this.#authentication = { at: now, result };
      // A failure (an exec plugin that fails) is not kept: the next request tries again.
      result.catch(() => {
        if (this.#authentication?.result === result) this.#authentication = undefined;
      });
    }
    const { headers, dispatcher } = await this.#authentication.result;
    for (const [name, value] of Object.entries(headers)) context.setHeaderParam(name, value);
    if (dispatcher) context.setDispatcher(dispatcher);
  }

  /** client-node's own authentication, on a throwaway request; its Agent replaced by the shared one. */
  async #authenticate(): Promise<Authentication> {
    const probe = new k8s.RequestContext(this.getCurrentCluster()?.server ?? 'https://localhost', k8s.HttpMethod.GET);
    let made: MadeOptions | undefined;
    const setDispatcher = probe.setDispatcher.bind(probe);
    probe.setDispatcher = (fresh: Dispatcher) => {
      // client-node sets the Agent right after making its options, with no await between.
      made = this.#options;
      setDispatcher(fresh);
    };
    await super.applySecurityAuthentication(probe);
    const fresh = probe.getDispatcher();
    let dispatcher: Dispatcher | undefined;
    if (fresh && made) {
      const { key, options } = made;
      dispatcher = this.#agents.get(key);
      if (!dispatcher) {
        dispatcher = options.type === 'agent' ? new Agent({ connect: options.connect, allowH2: false }) : fresh;
        this.#agents.set(key, dispatcher);
      }
    }
    return { headers: probe.getHeaders(), dispatcher: dispatcher ?? fresh };
  }

  /** Closes the kept-alive connections (a stopped controller leaves no socket behind). */
  async close(): Promise<void> {
    const agents = [...this.#agents.values()];
    this.#agents.clear();
    this.#authentication = undefined;
    await Promise.all(agents.map((a) => a.close().catch(() => undefined)));
  }
}

export function kubeClients(kubeconfig?: string, limits?: KubeClientLimits): KubeClients {
  const kc = new PooledKubeConfig(limits);
  if (kubeconfig) kc.loadFromFile(kubeconfig);
  else kc.loadFromDefault();
  return {
    kc,
    core: kc.makeApiClient(k8s.CoreV1Api),
    batch: kc.makeApiClient(k8s.BatchV1Api),
    custom: kc.makeApiClient(k8s.CustomObjectsApi),
    coordination: kc.makeApiClient(k8s.CoordinationV1Api),
  };
}

/** The HTTP status of a client-node error (ApiException.code), if any. */
export function statusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}

/** The call's answer, or undefined when the API server answered with one of `statuses` (404: gone). */
export async function ignoring<T>(statuses: number[], call: Promise<T>): Promise<T | undefined> {
  try {
    return await call;
  } catch (err) {
    if (statuses.includes(statusOf(err) ?? 0)) return undefined;
    throw err;
  }
}

/** A JSON merge patch through client-node 2.x (the content type is set per call). */
export const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
