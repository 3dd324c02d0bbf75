// The local cluster's node: a FAKE kubelet and a minimal scheduler, so that Jobs run and finish
// through the real Job controller without a container runtime. It registers one Node, binds
// Pending Pods that fit it (nodeSelector, taints, extended resources such as a fake
// nvidia.com/gpu), runs each container's command as a local process with the Pod's environment
// (Secret and ConfigMap references resolved from the API), and writes Pod status as a kubelet
// would: Running, then Succeeded or Failed with the exit code. A Pod's service account token comes
// as a KUBECONFIG (see #serviceAccountCredentials). Images are not pulled: an image
// that does not match `pullableImages` stays in ErrImagePull, as an unpullable image does.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { PooledKubeConfig } from '../../kube/client.ts';
import { signalGroup } from '../../process/local-processes.ts';

/** Images the FAKE kubelet "pulls": kinfer's own (ghcr.io/kinfer/kinfer:<tag>, or kinfer/<name>), run from the checkout. */
export const KINFER_IMAGES = /^(kinfer|ghcr\.io\/kinfer)\//;

export interface NodeAgentOptions {
  kubeconfig: string;
  nodeName: string;
  labels: Record<string, string>;
  taints: k8s.V1Taint[];
  /** Node capacity, e.g. { cpu: '2', memory: '8Gi', pods: '110', 'nvidia.com/gpu': '1' }. */
  capacity: Record<string, string>;
  pullableImages: RegExp;
  /** Maps a container's workingDir (inside the image) to a local directory. */
  workingDirs: Record<string, string>;
  /** The local stand-in for every image's ENTRYPOINT, used for containers without `command`. */
  imageEntrypoint: string[];
  /** Container stdout/stderr go to `{logDir}/{namespace}_{pod}_{container}.log`. */
  logDir: string;
  /** Extra environment for every container (e.g. PATH with the right Node). */
  baseEnv: Record<string, string>;
  log?: (msg: string) => void;
}

interface Running {
  processes: Map<string, ChildProcess>;
  exits: Map<string, { exitCode: number; signal: string | null }>;
  killTimer?: NodeJS.Timeout;
}

const key = (pod: k8s.V1Pod) => `${pod.metadata!.namespace}/${pod.metadata!.name}`;
const now = () => new Date();

export class NodeAgent {
  readonly #o: NodeAgentOptions;
  readonly #core: k8s.CoreV1Api;
  readonly #kc: PooledKubeConfig;
  readonly #running = new Map<string, Running>();
  /** Pods whose status was already set to a terminal state or pull error, not to redo. */
  readonly #handled = new Set<string>();
  readonly #queues = new Map<string, Promise<void>>();
  #informer: k8s.Informer<k8s.V1Pod> | undefined;
  #stopped = false;

  constructor(opts: NodeAgentOptions) {
    this.#o = opts;
    this.#kc = new PooledKubeConfig();
    this.#kc.loadFromFile(opts.kubeconfig);
    this.#core = this.#kc.makeApiClient(k8s.CoreV1Api);
    mkdirSync(opts.logDir, { recursive: true });
  }

  async start(): Promise<void> {
    await this.#registerNode();
    const informer = k8s.makeInformer(this.#kc, '/api/v1/pods', () => this.#core.listPodForAllNamespaces());
    const enqueue = (pod: k8s.V1Pod) => this.#enqueue(pod);
    informer.on('add', enqueue);
    informer.on('update', enqueue);
    informer.on('delete', (pod) => this.#forget(pod));
    informer.on('error', () => {
      // makeInformer stops on errors other than 410: restart it after a pause.
      if (!this.#stopped) setTimeout(() => void informer.start().catch(() => undefined), 1000);
    });
    await informer.start();
    this.#informer = informer;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#informer?.stop();
    for (const run of this.#running.values()) for (const p of run.processes.values()) signalContainer(p, 'SIGKILL');
    await this.#kc.close();
  }

  async #registerNode(): Promise<void> {
    const { nodeName, labels, taints, capacity } = this.#o;
    const body: k8s.V1Node = {
      metadata: { name: nodeName, labels: { 'kubernetes.io/hostname': nodeName, 'kubernetes.io/os': 'linux', ...labels } },
      spec: { taints },
    };
    try {
      await this.#core.createNode({ body });
    } catch (err) {
      if ((err as { code?: number }).code !== 409) throw err;
    }
    const node = await this.#core.readNode({ name: nodeName });
    node.status = {
      capacity,
      allocatable: capacity,
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          reason: 'KubeletReady',
          message: 'kinfer local node agent (fake kubelet) is ready',
          lastHeartbeatTime: now(),
          lastTransitionTime: now(),
        },
      ],
      nodeInfo: {
        architecture: process.arch,
        bootID: '',
        containerRuntimeVersion: 'kinfer-local://processes',
        kernelVersion: '',
        kubeProxyVersion: '',
        kubeletVersion: 'kinfer-node-agent',
        machineID: '',
        operatingSystem: 'linux',
        osImage: 'local processes',
        systemUUID: '',
      },
    };
    await this.#core.replaceNodeStatus({ name: nodeName, body: node });
  }

  /** One handler at a time per Pod. */
  #enqueue(pod: k8s.V1Pod): void {
    const k = key(pod);
    const next = (this.#queues.get(k) ?? Promise.resolve())
      .then(() => this.#handle(pod))
      .catch((err) => this.#o.log?.(`node agent: ${k}: ${(err as Error).message}`));
    this.#queues.set(k, next);
    void next.finally(() => {
      if (this.#queues.get(k) === next) this.#queues.delete(k);
    });
  }

  #forget(pod: k8s.V1Pod): void {
    const k = key(pod);
    const run = this.#running.get(k);
    if (run) for (const p of run.processes.values()) signalContainer(p, 'SIGKILL');
    this.#running.delete(k);
    this.#handled.delete(k);
  }

  async #handle(pod: k8s.V1Pod): Promise<void> {
    const k = key(pod);
    const mine = pod.spec?.nodeName === this.#o.nodeName;
    if (pod.metadata?.deletionTimestamp) {
      if (mine) await this.#terminate(pod);
      return;
    }
    if (!pod.spec?.nodeName && pod.status?.phase === 'Pending') {
      await this.#schedule(pod);
      return;
    }
    if (!mine || this.#running.has(k) || this.#handled.has(k)) return;
    if (pod.status?.phase !== 'Pending') return;
    await this.#run(pod);
  }

  /** Why this node cannot take the Pod, or undefined when it can. */
  #unfit(pod: k8s.V1Pod): string | undefined {
    const labels: Record<string, string> = { 'kubernetes.io/hostname': this.#o.nodeName, 'kubernetes.io/os': 'linux', ...this.#o.labels };
    for (const [k, v] of Object.entries(pod.spec?.nodeSelector ?? {})) {
      if (labels[k] !== v) return `node(s) didn't match Pod's node affinity/selector (${k}=${v})`;
    }
    for (const taint of this.#o.taints) {
      if (taint.effect !== 'NoSchedule' && taint.effect !== 'NoExecute') continue;
      const tolerated = (pod.spec?.tolerations ?? []).some(
        (t) =>
          (t.operator === 'Exists' && (!t.key || t.key === taint.key)) ||
          (t.key === taint.key && (t.value ?? '') === (taint.value ?? '') && (!t.effect || t.effect === taint.effect)),
      );
      if (!tolerated) return `node(s) had untolerated taint {${taint.key}: ${taint.value ?? ''}}`;
    }
    for (const c of pod.spec?.containers ?? []) {
      for (const [resource, quantity] of Object.entries(c.resources?.limits ?? {})) {
        if (resource === 'cpu' || resource === 'memory') continue;
        const have = Number(this.#o.capacity[resource] ?? 0);
        if (Number(quantity) > have) return `Insufficient ${resource}`;
      }
    }
    return undefined;
  }

  async #schedule(pod: k8s.V1Pod): Promise<void> {
    const { name, namespace } = pod.metadata as { name: string; namespace: string };
    const reason = this.#unfit(pod);
    if (reason) {
      const already = pod.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False');
      if (already) return;
      await this.#updateStatus(pod, (status) => {
        status.conditions = [
          ...(status.conditions ?? []).filter((c) => c.type !== 'PodScheduled'),
          { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: `0/1 nodes are available: 1 ${reason}.`, lastTransitionTime: now() },
        ];
      });
      return;
    }
    await this.#core.createNamespacedPodBinding({
      name,
      namespace,
      body: { metadata: { name, namespace }, target: { apiVersion: 'v1', kind: 'Node', name: this.#o.nodeName } },
    });
  }

  async #resolveEnv(pod: k8s.V1Pod, container: k8s.V1Container): Promise<Record<string, string>> {
    const namespace = pod.metadata!.namespace!;
    const secrets = new Map<string, Record<string, string>>();
    const configMaps = new Map<string, Record<string, string>>();
    const secret = async (name: string) => {
      if (!secrets.has(name)) {
        const s = await this.#core.readNamespacedSecret({ name, namespace });
        secrets.set(name, Object.fromEntries(Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')])));
      }
      return secrets.get(name)!;
    };
    const configMap = async (name: string) => {
      if (!configMaps.has(name)) configMaps.set(name, (await this.#core.readNamespacedConfigMap({ name, namespace })).data ?? {});
      return configMaps.get(name)!;
    };
    const env: Record<string, string> = {};
    for (const from of container.envFrom ?? []) {
      const values = from.secretRef ? await secret(from.secretRef.name!) : from.configMapRef ? await configMap(from.configMapRef.name!) : {};
      for (const [k, v] of Object.entries(values)) env[`${from.prefix ?? ''}${k}`] = v;
    }
    for (const e of container.env ?? []) {
      if (e.value !== undefined) env[e.name] = e.value;
      else if (e.valueFrom?.secretKeyRef) {
        const ref = e.valueFrom.secretKeyRef;
        const value = (await secret(ref.name!))[ref.key];
        if (value === undefined) throw new Error(`couldn't find key ${ref.key} in Secret ${namespace}/${ref.name}`);
        env[e.name] = value;
      } else if (e.valueFrom?.configMapKeyRef) {
        const ref = e.valueFrom.configMapKeyRef;
        const value = (await configMap(ref.name!))[ref.key];
        if (value === undefined) throw new Error(`couldn't find key ${ref.key} in ConfigMap ${namespace}/${ref.name}`);
        env[e.name] = value;
      } else if (e.valueFrom?.fieldRef) {
        env[e.name] = fieldRefValue(pod, e.valueFrom.fieldRef.fieldPath, { namespace, nodeName: this.#o.nodeName });
      }
    }
    return env;
  }

  /**
   * A kubelet mounts the Pod's service account token; with no container filesystem, this agent
   * hands the process a kubeconfig holding a TokenRequest token for the same account instead, so
   * the process has exactly that account's RBAC. Only for Pods that name an account and do not
   * opt out of the token.
   */
  async #serviceAccountCredentials(pod: k8s.V1Pod): Promise<Record<string, string>> {
    const account = pod.spec!.serviceAccountName;
    if (!account || pod.spec!.automountServiceAccountToken === false) return {};
    const namespace = pod.metadata!.namespace!;
    const request = await this.#core.createNamespacedServiceAccountToken({
      name: account,
      namespace,
      body: {
        spec: { audiences: [], expirationSeconds: 3600, boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.metadata!.name!, uid: pod.metadata!.uid! } },
      },
    });
    const cluster = this.#kc.getCurrentCluster()!;
    const kc = new k8s.KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'local', server: cluster.server, caData: cluster.caData, caFile: cluster.caFile, skipTLSVerify: false }],
      users: [{ name: `${namespace}/${account}`, token: request.status!.token }],
      contexts: [{ name: 'pod', cluster: 'local', user: `${namespace}/${account}`, namespace }],
      currentContext: 'pod',
    });
    const dir = join(this.#o.logDir, '..', 'service-account-tokens');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const file = join(dir, `${namespace}_${pod.metadata!.name}.kubeconfig`);
    writeFileSync(file, kc.exportConfig(), { mode: 0o600 });
    return { KUBECONFIG: file };
  }

  async #run(pod: k8s.V1Pod): Promise<void> {
    const k = key(pod);
    const containers = pod.spec!.containers;
    const unpullable = containers.find((c) => !this.#o.pullableImages.test(c.image ?? ''));
    if (unpullable) {
      this.#handled.add(k);
      await this.#updateStatus(pod, (status) => {
        status.containerStatuses = containers.map((c) =>
          waiting(
            c,
            c === unpullable ? 'ErrImagePull' : 'ContainerCreating',
            c === unpullable ? `failed to pull image "${c.image}": not available on this node` : '',
          ),
        );
      });
      return;
    }
    const envs: Array<Record<string, string>> = [];
    try {
      const credentials = await this.#serviceAccountCredentials(pod);
      for (const c of containers) envs.push({ ...credentials, ...(await this.#resolveEnv(pod, c)) });
    } catch (err) {
      // Like the kubelet: the Pod stays Pending until the reference can be resolved.
      await this.#updateStatus(pod, (status) => {
        status.containerStatuses = containers.map((c) => waiting(c, 'CreateContainerConfigError', (err as Error).message));
      });
      return;
    }
    const run: Running = { processes: new Map(), exits: new Map() };
    this.#running.set(k, run);
    const startedAt = now();
    containers.forEach((c, i) => {
      const [file, ...args] = [...(c.command ?? this.#o.imageEntrypoint), ...(c.args ?? [])];
      const logFile = join(this.#o.logDir, `${pod.metadata!.namespace}_${pod.metadata!.name}_${c.name}.log`);
      const out = openSync(logFile, 'a');
      const child = spawn(file!, args, {
        cwd: (c.workingDir && this.#o.workingDirs[c.workingDir]) ?? c.workingDir ?? process.cwd(),
        env: { ...this.#o.baseEnv, ...envs[i] },
        stdio: ['ignore', out, out],
        detached: true,
      });
      closeSync(out);
      run.processes.set(c.name, child);
      child.on('error', () => undefined);
      child.once('exit', (code, signal) => {
        run.exits.set(c.name, { exitCode: code ?? (signal === 'SIGKILL' ? 137 : 143), signal });
        if (run.exits.size === containers.length) this.#enqueueFinished(pod);
      });
    });
    await this.#updateStatus(pod, (status) => {
      status.phase = 'Running';
      status.startTime = startedAt;
      status.hostIP = '127.0.0.1';
      status.podIP = '127.0.0.1';
      status.conditions = [
        { type: 'PodScheduled', status: 'True', lastTransitionTime: startedAt },
        { type: 'Initialized', status: 'True', lastTransitionTime: startedAt },
        { type: 'ContainersReady', status: 'True', lastTransitionTime: startedAt },
        { type: 'Ready', status: 'True', lastTransitionTime: startedAt },
      ];
      status.containerStatuses = containers.map((c) => ({
        name: c.name,
        image: c.image!,
        imageID: '',
        ready: true,
        restartCount: 0,
        started: true,
        state: { running: { startedAt } },
      }));
    });
  }

  #enqueueFinished(pod: k8s.V1Pod): void {
    const k = key(pod);
    const next = (this.#queues.get(k) ?? Promise.resolve())
      .then(() => this.#finished(pod))
      .catch((err) => this.#o.log?.(`node agent: ${k}: ${(err as Error).message}`));
    this.#queues.set(k, next);
  }

  async #finished(pod: k8s.V1Pod): Promise<void> {
    const k = key(pod);
    const run = this.#running.get(k);
    if (!run) return;
    clearTimeout(run.killTimer);
    this.#running.delete(k);
    this.#handled.add(k);
    const finishedAt = now();
    const failed = [...run.exits.values()].some((e) => e.exitCode !== 0);
    try {
      await this.#updateStatus(pod, (status) => {
        status.phase = failed ? 'Failed' : 'Succeeded';
        status.conditions = (status.conditions ?? []).map((c) =>
          c.type === 'Ready' || c.type === 'ContainersReady' ? { ...c, status: 'False', reason: 'PodCompleted', lastTransitionTime: finishedAt } : c,
        );
        status.containerStatuses = pod.spec!.containers.map((c) => {
          const exit = run.exits.get(c.name)!;
          return {
            name: c.name,
            image: c.image!,
            imageID: '',
            ready: false,
            restartCount: 0,
            started: false,
            state: { terminated: { exitCode: exit.exitCode, reason: exit.exitCode === 0 ? 'Completed' : 'Error', startedAt: status.startTime, finishedAt } },
          };
        });
      });
    } catch (err) {
      if ((err as { code?: number }).code !== 404) throw err;
    }
    if (pod.metadata?.deletionTimestamp || (await this.#isDeleting(pod))) await this.#confirmDeletion(pod);
  }

  async #isDeleting(pod: k8s.V1Pod): Promise<boolean> {
    try {
      const fresh = await this.#core.readNamespacedPod({ name: pod.metadata!.name!, namespace: pod.metadata!.namespace! });
      return Boolean(fresh.metadata?.deletionTimestamp);
    } catch {
      return false;
    }
  }

  /** Graceful stop: SIGTERM, SIGKILL after the grace period, then confirm the deletion. */
  async #terminate(pod: k8s.V1Pod): Promise<void> {
    const run = this.#running.get(key(pod));
    if (!run) {
      await this.#confirmDeletion(pod);
      return;
    }
    if (run.killTimer) return;
    for (const p of run.processes.values()) signalContainer(p, 'SIGTERM');
    const grace = (pod.metadata?.deletionGracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30) * 1000;
    run.killTimer = setTimeout(() => {
      for (const p of run.processes.values()) signalContainer(p, 'SIGKILL');
    }, grace);
  }

  async #confirmDeletion(pod: k8s.V1Pod): Promise<void> {
    try {
      await this.#core.deleteNamespacedPod({ name: pod.metadata!.name!, namespace: pod.metadata!.namespace!, gracePeriodSeconds: 0 });
    } catch (err) {
      if ((err as { code?: number }).code !== 404) throw err;
    }
  }

  /** Read-modify-write of the Pod's status, retried on conflicts. */
  async #updateStatus(pod: k8s.V1Pod, mutate: (status: k8s.V1PodStatus) => void): Promise<void> {
    const { name, namespace } = pod.metadata as { name: string; namespace: string };
    for (let attempt = 0; ; attempt++) {
      const fresh = await this.#core.readNamespacedPod({ name, namespace });
      fresh.status ??= {};
      mutate(fresh.status);
      try {
        await this.#core.replaceNamespacedPodStatus({ name, namespace, body: fresh });
        return;
      } catch (err) {
        if ((err as { code?: number }).code !== 409 || attempt >= 5) throw err;
      }
    }
  }
}

function waiting(c: k8s.V1Container, reason: string, message: string): k8s.V1ContainerStatus {
  return { name: c.name, image: c.image!, imageID: '', ready: false, restartCount: 0, started: false, state: { waiting: { reason, message } } };
}

/** Signals a container's process group, unless it has already exited. */
function signalContainer(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid && child.exitCode === null && child.signalCode === null) signalGroup(child.pid, signal);
}

/**
 * The downward API's fields as the kubelet resolves them, including one annotation or label
 * (an Indexed Job's `JOB_COMPLETION_INDEX` is `metadata.annotations['batch.kubernetes.io/job-completion-index']`).
 */
function fieldRefValue(pod: k8s.V1Pod, path: string, at: { namespace: string; nodeName: string }): string {
  const keyed = /^metadata\.(annotations|labels)\['([^']+)'\]$/.exec(path);
  if (keyed) return pod.metadata?.[keyed[1] as 'annotations' | 'labels']?.[keyed[2]!] ?? '';
  if (path === 'metadata.name') return pod.metadata!.name!;
  if (path === 'metadata.namespace') return at.namespace;
  if (path === 'spec.nodeName') return at.nodeName;
  if (path === 'metadata.uid') return pod.metadata!.uid!;
  return '';
}
