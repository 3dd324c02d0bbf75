// The local cluster as the Kubernetes tier will use it: real etcd, kube-apiserver and
// kube-controller-manager; the node agent runs Pods; kubectl is the real binary.
import type * as k8s from '@kubernetes/client-node';
import { eventually, startTestCluster, type TestCluster } from '../support/local-cluster.ts';

let cluster: TestCluster;
const ns = 'default';

beforeAll(async () => {
  // One fake GPU, advertised only: nothing here uses a GPU.
  cluster = await startTestCluster({ fakeGpus: 1, taints: [{ key: 'nvidia.com/gpu', value: 'present', effect: 'NoSchedule' }] });
}, 600_000);
afterAll(async () => {
  await cluster?.stop();
});

function job(
  name: string,
  script: string,
  extra: { image?: string; backoffLimit?: number; pod?: Partial<k8s.V1PodSpec>; container?: Partial<k8s.V1Container> } = {},
): k8s.V1Job {
  return {
    metadata: { name },
    spec: {
      backoffLimit: extra.backoffLimit ?? 0,
      template: {
        spec: {
          restartPolicy: 'Never',
          tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
          ...extra.pod,
          containers: [{ name: 'main', image: extra.image ?? 'ghcr.io/kinfer/kinfer:test', command: ['node', '-e', script], ...extra.container }],
        },
      },
    },
  };
}

const jobCondition = (name: string, type: string) =>
  eventually(`Job ${name} ${type}`, async () => {
    const j = await cluster.batch.readNamespacedJob({ name, namespace: ns });
    return j.status?.conditions?.find((c) => c.type === type && c.status === 'True');
  });

const podsOf = async (jobName: string) => (await cluster.core.listNamespacedPod({ namespace: ns, labelSelector: `job-name=${jobName}` })).items;

describe('local control plane + node agent', () => {
  it('runs a Job to completion through the real Job controller, with Secret and ConfigMap env resolved', async () => {
    await cluster.core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'creds' }, stringData: { token: 's3cret' } } });
    await cluster.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'cfg' }, data: { MODE: 'eval' } } });
    const script = `if (process.env.TOKEN !== 's3cret' || process.env.MODE !== 'eval' || !process.env.POD.startsWith('ok-')) process.exitCode = 3`;
    await cluster.batch.createNamespacedJob({
      namespace: ns,
      body: job('ok', script, {
        container: {
          env: [
            { name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'creds', key: 'token' } } },
            { name: 'POD', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
          ],
          envFrom: [{ configMapRef: { name: 'cfg' } }],
        },
      }),
    });
    await jobCondition('ok', 'Complete');
    const [pod] = await podsOf('ok');
    expect(pod!.spec!.nodeName).toBe('kinfer-test-node');
    expect(pod!.status!.phase).toBe('Succeeded');
    expect(pod!.status!.containerStatuses![0]!.state!.terminated).toMatchObject({ exitCode: 0, reason: 'Completed' });
  });

  it('fails a Job when its backoff is exhausted, with the exit code on each Pod', async () => {
    await cluster.batch.createNamespacedJob({ namespace: ns, body: job('boom', 'process.exitCode = 7', { backoffLimit: 1 }) });
    const failed = await jobCondition('boom', 'Failed');
    expect(failed.reason).toBe('BackoffLimitExceeded');
    const pods = await podsOf('boom');
    expect(pods).toHaveLength(2);
    for (const p of pods) expect(p.status!.containerStatuses![0]!.state!.terminated!.exitCode).toBe(7);
  });

  it('leaves a Pod with an unpullable image Pending in ErrImagePull', async () => {
    await cluster.batch.createNamespacedJob({ namespace: ns, body: job('nopull', '0', { image: 'registry.invalid/nope:1' }) });
    const waiting = await eventually('ErrImagePull', async () => (await podsOf('nopull'))[0]?.status?.containerStatuses?.[0]?.state?.waiting);
    expect(waiting.reason).toBe('ErrImagePull');
    expect((await podsOf('nopull'))[0]!.status!.phase).toBe('Pending');
  });

  it('marks a Pod that fits no node Unschedulable, as the scheduler does', async () => {
    await cluster.batch.createNamespacedJob({ namespace: ns, body: job('nofit', '0', { pod: { nodeSelector: { 'kinfer.io/accelerator': 'tpu' } } }) });
    const cond = await eventually('PodScheduled=False', async () =>
      (await podsOf('nofit'))[0]?.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False'),
    );
    expect(cond.reason).toBe('Unschedulable');
    expect(cond.message).toMatch(/node affinity\/selector/);
  });

  it('schedules onto the (fake) GPU node only with the toleration and within its GPU count', async () => {
    const gpuJob = (name: string, gpus: number, tolerate: boolean) =>
      job(name, '0', {
        pod: { nodeSelector: { 'kinfer.io/accelerator': 'fake-nvidia-gpu' }, ...(tolerate ? {} : { tolerations: [] }) },
        container: { resources: { limits: { 'nvidia.com/gpu': String(gpus) } } },
      });
    await cluster.batch.createNamespacedJob({ namespace: ns, body: gpuJob('gpu-ok', 1, true) });
    await cluster.batch.createNamespacedJob({ namespace: ns, body: gpuJob('gpu-notoleration', 1, false) });
    await cluster.batch.createNamespacedJob({ namespace: ns, body: gpuJob('gpu-toomany', 2, true) });
    await jobCondition('gpu-ok', 'Complete');
    const reason = (name: string) =>
      eventually(
        `${name} unschedulable`,
        async () => (await podsOf(name))[0]?.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False')?.message,
      );
    expect(await reason('gpu-notoleration')).toMatch(/untolerated taint \{nvidia.com\/gpu: present\}/);
    expect(await reason('gpu-toomany')).toMatch(/Insufficient nvidia.com\/gpu/);
  });

  it('stops the process when its Job is deleted (background propagation, garbage collector)', async () => {
    await cluster.batch.createNamespacedJob({ namespace: ns, body: job('forever', 'setInterval(() => {}, 1000)') });
    const pod = await eventually('Running', async () => (await podsOf('forever')).find((p) => p.status?.phase === 'Running'));
    await cluster.batch.deleteNamespacedJob({ name: 'forever', namespace: ns, propagationPolicy: 'Background' });
    await eventually('Pod gone', async () => ((await podsOf('forever')).length === 0 ? true : undefined));
    expect(pod.metadata!.name).toMatch(/^forever-/);
  });
});

describe('InferenceJob CRD', () => {
  const valid = {
    apiVersion: 'kinfer.io/v1alpha1',
    kind: 'InferenceJob',
    metadata: { name: 'flowers-eval' },
    spec: { type: 'test_run', taskType: 'image_classification', checkpointPath: 's3://models/m.onnx', dataset: { path: 's3://data/flowers' } },
  };
  const apply = (obj: unknown) => cluster.kubectl(['apply', '-f', '-'], JSON.stringify(obj));

  it('accepts a valid InferenceJob and defaults the split', async () => {
    const res = await apply(valid);
    expect(res.stderr).toBe('');
    const got = JSON.parse((await cluster.kubectl(['get', 'ij', 'flowers-eval', '-o', 'json'])).stdout);
    expect(got.spec.dataset.split).toBe('test');
    expect(got.spec.backoffLimit).toBe(0);
  });

  it.each([
    [
      'a test run without a dataset',
      { ...valid, metadata: { name: 'a' }, spec: { ...valid.spec, dataset: undefined } },
      /spec\.dataset: Invalid value.*a test_run needs spec\.dataset/,
    ],
    [
      'an inference job without input',
      { ...valid, metadata: { name: 'b' }, spec: { type: 'inference', taskType: 'image_classification', checkpointPath: 's3://m/m.onnx' } },
      /spec\.input.*an inference job needs spec\.input/,
    ],
    [
      'two input shapes at once',
      {
        ...valid,
        metadata: { name: 'c' },
        spec: {
          type: 'inference',
          taskType: 'image_classification',
          checkpointPath: 's3://m/m.onnx',
          input: { imagePath: 's3://a/b.jpg', datasetPath: 's3://a/' },
        },
      },
      /spec\.input.*set exactly one of imagePath, imagePaths, datasetPath/,
    ],
    [
      'an unknown task',
      { ...valid, metadata: { name: 'd' }, spec: { ...valid.spec, taskType: 'image_generation' } },
      /spec\.taskType: Unsupported value: "image_generation"/,
    ],
    [
      'a checkpoint that is not a storage URI',
      { ...valid, metadata: { name: 'e' }, spec: { ...valid.spec, checkpointPath: 'http://x/m.onnx' } },
      /spec\.checkpointPath: Invalid value/,
    ],
    ['a negative backoff limit', { ...valid, metadata: { name: 'f' }, spec: { ...valid.spec, backoffLimit: -1 } }, /spec\.backoffLimit: Invalid value: -1/],
  ])('refuses %s, naming the field', async (_what, obj, message) => {
    const res = await apply(obj);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(message);
  });

  it('refuses a change to the spec', async () => {
    const res = await apply({ ...valid, spec: { ...valid.spec, checkpointPath: 's3://models/other.onnx' } });
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/spec is immutable/);
  });

  it('shows the printer columns from status', async () => {
    const status = { phase: 'Running', progress: '40/100', progressPercent: 40, primaryMetric: { name: 'accuracy', value: 0.9, display: 'accuracy=0.900' } };
    const patched = await cluster.kubectl(['patch', 'ij', 'flowers-eval', '--subresource=status', '--type=merge', '-p', JSON.stringify({ status })]);
    expect(patched.stderr).toBe('');
    const table = (await cluster.kubectl(['get', 'ij'])).stdout.split('\n');
    expect(table[0]).toMatch(/^NAME\s+TYPE\s+TASK\s+PHASE\s+PROGRESS\s+METRIC\s+AGE$/);
    expect(table[1]).toMatch(/^flowers-eval\s+test_run\s+image_classification\s+Running\s+40\/100\s+accuracy=0\.900\s+\d+s$/);
  });
});
