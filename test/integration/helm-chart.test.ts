// The Helm chart, verified for real: helm lint --strict and helm template over several value
// sets, a server-side dry run of every rendered object against the real local control plane,
// then `helm install` into it. The chart's Deployments run through the real Deployment and
// ReplicaSet controllers; the node agent (a FAKE kubelet: host processes, no images) runs their
// Pods with the env the chart wrote and a token of the chart's ServiceAccount, so the controller
// works under exactly the chart's RBAC. An InferenceJob then runs to completion through it.
import { randomUUID } from 'node:crypto';
import { parse as parseYaml } from 'yaml';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { kubeTools } from '../../src/local/cluster/kube-tools.ts';
import { CHART_DIR as CHART, REPO_ROOT } from '../../src/local/cluster/local-cluster.ts';
import { MANIFESTS, renderManifests } from '../../scripts/render-manifests.ts';
import { COLOR_CLASSES } from '../../src/samples/color-classifier.ts';
import { buildColorDataset } from '../../src/samples/color-dataset.ts';
import { sampleDatasetOptions } from '../../src/samples/write-samples.ts';
import { eventually, startTestCluster, type TestCluster } from '../support/local-cluster.ts';
import { freePort } from '../support/ports.ts';
import { runCommand } from '../support/processes.ts';
import { referenceMetrics } from '../support/reference-metrics.ts';
import { createDatabase, outcome } from '../support/test-stack.ts';
import { testStorage } from '../support/in-process.ts';

const VALUE_SETS = [...readdirSync(join(CHART, 'ci')).map((f) => join(CHART, 'ci', f)), join(REPO_ROOT, 'deploy', 'kind-values.yaml')];
const NAMES = COLOR_CLASSES.map((c) => c.name);

let cluster: TestCluster;

const helm = (args: string[]) => runCommand(kubeTools().helm, [...args, '--kubeconfig', cluster.cp.kubeconfig]);

beforeAll(async () => {
  // No CRD beforehand: the chart installs it (a template, so helm upgrade upgrades it).
  cluster = await startTestCluster({ crd: false });
  // A stand-in (FAKE schema, any fields) for the Prometheus Operator's ServiceMonitor CRD, so
  // that the dry run can judge the rest of a ServiceMonitor object: its kind must be served.
  const crd = await cluster.kubectl(
    ['apply', '--server-side', '-f', '-'],
    JSON.stringify({
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: 'servicemonitors.monitoring.coreos.com' },
      spec: {
        group: 'monitoring.coreos.com',
        scope: 'Namespaced',
        names: { plural: 'servicemonitors', singular: 'servicemonitor', kind: 'ServiceMonitor', listKind: 'ServiceMonitorList' },
        versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } }],
      },
    }),
  );
  expect(crd.stderr).toBe('');
  await cluster.kubectl(['wait', '--for=condition=Established', 'crd/servicemonitors.monitoring.coreos.com', '--timeout=30s']);
  expect((await cluster.kubectl(['create', 'namespace', 'kinfer-system'])).code).toBe(0);
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
});

describe('helm lint and template', () => {
  it.each(VALUE_SETS.map((f) => [f.slice(REPO_ROOT.length)]))('lints strictly with %s', async (file) => {
    const { code, stdout, stderr } = await helm(['lint', '--strict', CHART, '-f', join(REPO_ROOT, file)]);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(stdout).toContain('0 chart(s) failed');
  });

  it('refuses bad values through values.schema.json, naming the value', async () => {
    const wrongType = await helm(['template', 'k', CHART, '--set', 'database.url=postgres://x/y', '--set', 'controller.replicaCount=two']);
    expect(wrongType.code).not.toBe(0);
    expect(wrongType.stderr).toMatch(/\/controller\/replicaCount': got string, want integer/);
    const unknown = await helm(['template', 'k', CHART, '--set', 'database.url=postgres://x/y', '--set', 'runner.gpus=1']);
    expect(unknown.stderr).toMatch(/additional properties 'gpus' not allowed/);
    const badUri = await helm(['template', 'k', CHART, '--set', 'database.url=postgres://x/y', '--set', 'objectStorage.artifactsUri=/data']);
    expect(badUri.stderr).toMatch(/\/objectStorage\/artifactsUri/);
  });

  it('refuses to render without a database', async () => {
    const { code, stderr } = await helm(['template', 'k', CHART]);
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/database\.url or database\.existingSecret is required/);
  });

  it.each(VALUE_SETS.map((f) => [f.slice(REPO_ROOT.length)]))('every object rendered with %s passes a server-side dry run', async (file) => {
    const rendered = await helm(['template', 'kinfer', CHART, '-n', 'kinfer-system', '-f', join(REPO_ROOT, file)]);
    expect(rendered.stderr).toBe('');
    const kinds = [...rendered.stdout.matchAll(/^kind: (\w+)$/gm)].map((m) => m[1]);
    expect(kinds).toEqual(expect.arrayContaining(['CustomResourceDefinition', 'Deployment', 'Service']));
    const dry = await cluster.kubectl(
      ['apply', '--server-side', '--dry-run=server', '--field-manager=helm-dry-run', '-n', 'kinfer-system', '-f', '-'],
      rendered.stdout,
    );
    expect(dry.stderr).toBe('');
    expect(dry.code).toBe(0);
    // One line per object: nothing was skipped.
    expect(dry.stdout.trim().split('\n')).toHaveLength(kinds.length);
  });

  it('renders what each value set asks for', async () => {
    const render = async (file: string) => (await helm(['template', 'kinfer', CHART, '-n', 'kinfer-system', '-f', join(CHART, 'ci', file)])).stdout;
    const all = await render('all-features-values.yaml');
    expect(all).toContain('kind: ServiceMonitor');
    expect(all.match(/kind: PodDisruptionBudget/g)).toHaveLength(3);
    expect(all).toContain('nodePort: 30080');
    // The runner defaults reach the controller as one JSON value (escaped inside YAML quotes).
    expect(all).toContain('\\"gpu\\":{\\"nodeSelector\\":{\\"kinfer.io/accelerator\\":\\"nvidia-gpu\\"}');
    // Access: OIDC with its groups, the storage allow-list, credentials per bucket from a Secret.
    for (const line of [
      'value: "https://login.example.com/realms/ml"',
      'value: "team-vision=vision"',
      'value: "s3://artifacts,s3://datasets/shared"',
      'secretKeyRef: { name: kinfer-team-buckets, key: buckets.json }',
    ])
      expect(all).toContain(line);
    const minimal = await render('minimal-values.yaml');
    for (const kind of ['ServiceMonitor', 'PodDisruptionBudget', 'NetworkPolicy', 'ClusterRole', 'ServiceAccount', 'Pod'])
      expect(minimal).not.toContain(`kind: ${kind}\n`);
    expect(minimal).toContain('serviceAccountName: kinfer-platform');
    const existing = await render('existing-secrets-values.yaml');
    // No Secret is generated when all four are given.
    expect(existing).not.toContain('kind: Secret');
    expect(existing).toContain('secretKeyRef: { name: kinfer-admin, key: api-token }');
    expect(existing).toContain('name: kinfer-token-keys, key: private.pem');
  });
});

describe('installed with helm into the local control plane', () => {
  const ns = 'kinfer-e2e';
  let apiUrl: string;
  let prefix: string;
  let valuesArgs: string[];
  let bearer: Record<string, string>;
  let predictorPort: number;

  beforeAll(async () => {
    const suite = `h${randomUUID().slice(0, 8)}`;
    const databaseUrl = await createDatabase(process.env.DATABASE_URL!, `kinfer_${suite}`);
    const [apiPort, callbackPort] = [await freePort(), await freePort()];
    predictorPort = await freePort();
    apiUrl = `http://127.0.0.1:${apiPort}`;
    prefix = `s3://${process.env.KINFER_TEST_BUCKET}/${suite}`;
    // Only what differs on this machine: where Postgres and S3 are, host ports instead of a Pod
    // network, and an image name the node agent accepts.
    valuesArgs = [
      '--set',
      'image.repository=ghcr.io/kinfer/kinfer',
      '--set',
      'image.tag=test',
      '--set-string',
      `database.url=${databaseUrl}`,
      '--set',
      `objectStorage.endpoint=${process.env.S3_ENDPOINT}`,
      '--set',
      `objectStorage.accessKeyId=${process.env.AWS_ACCESS_KEY_ID}`,
      '--set',
      `objectStorage.secretAccessKey=${process.env.AWS_SECRET_ACCESS_KEY}`,
      '--set',
      `objectStorage.artifactsUri=${prefix}/artifacts`,
      '--set',
      `controller.containerPort=${apiPort}`,
      '--set',
      `callback.containerPort=${callbackPort}`,
      '--set',
      `callback.url=http://127.0.0.1:${callbackPort}`,
      '--set',
      'controller.replicaCount=1',
      '--set',
      'callback.replicaCount=1',
      '--set',
      'predictor.replicaCount=1',
      '--set',
      `predictor.containerPort=${predictorPort}`,
      '--set',
      'controller.leaderElection.leaseDurationSeconds=4',
      '--set',
      'runner.resources.requests.cpu=100m',
      '--set',
      'runner.podLabels.team=vision',
      '--set',
      'runner.batchSize=4',
    ];
    const installed = await helm(['install', 'kinfer', CHART, '-n', ns, '--create-namespace', ...valuesArgs]);
    // The one warning allowed: this 1.34 API server serves MutatingAdmissionPolicy as v1beta1
    // (feature gate; v1 from 1.36), and says that version goes in 1.37+.
    const warnings = installed.stderr.split('\n').filter((l) => l && !/v1beta1 MutatingAdmissionPolicy(Binding)? is deprecated in v1\.37\+/.test(l));
    expect(warnings).toEqual([]);
    expect(installed.code).toBe(0);
    expect(installed.stdout).toContain('STATUS: deployed');
    // Rendered for this server's API: the finalizer policy is installed.
    const policies = await cluster.kubectl(['get', 'mutatingadmissionpolicies,mutatingadmissionpolicybindings', '-o', 'name']);
    expect(policies.stdout.trim().split('\n').sort()).toEqual([
      'mutatingadmissionpolicy.admissionregistration.k8s.io/kinfer-inferencejob-finalizer',
      'mutatingadmissionpolicybinding.admissionregistration.k8s.io/kinfer-inferencejob-finalizer',
    ]);
    // Ready only once the API server admits an InferenceJob: seconds after the CRD and the finalizer
    // policy are installed, it answers creates with 503 until it has loaded the CRD's schema.
    await eventually(
      'the controller Pod to serve /readyz',
      async () => ((await fetch(`${apiUrl}/readyz`).catch(() => undefined))?.status === 200 ? true : undefined),
      90_000,
    );
    await eventually(
      'the callback Pod to serve /readyz',
      async () => ((await fetch(`http://127.0.0.1:${callbackPort}/readyz`).catch(() => undefined))?.status === 200 ? true : undefined),
      60_000,
    );
    await eventually(
      'the predictor Pod to serve /readyz',
      async () => ((await fetch(`http://127.0.0.1:${predictorPort}/readyz`).catch(() => undefined))?.status === 200 ? true : undefined),
      60_000,
    );
    // The first admin token, as the chart's NOTES tell an operator to read it.
    const secret = await cluster.kubectl(['get', 'secret', 'kinfer-admin-token', '-n', ns, '-o', 'jsonpath={.data.token}']);
    bearer = { authorization: `Bearer ${Buffer.from(secret.stdout, 'base64').toString('utf8')}` };
  }, 180_000);

  it("lets a namespace's editors apply InferenceJobs and its viewers only read them (the chart's roles aggregate into edit and view)", async () => {
    for (const [user, role] of [
      ['alice', 'edit'],
      ['vic', 'view'],
    ]) {
      expect((await cluster.kubectl(['create', 'rolebinding', `${user}-${role}`, `--clusterrole=${role}`, `--user=${user}`, '-n', ns])).code).toBe(0);
    }
    const can = async (verb: string, user: string) =>
      (await cluster.kubectl(['auth', 'can-i', verb, 'inferencejobs.kinfer.io', '-n', ns, `--as=${user}`])).stdout.trim();
    await eventually('the aggregated roles', async () => ((await can('create', 'alice')) === 'yes' ? true : undefined), 30_000);
    expect([
      await can('create', 'alice'),
      await can('delete', 'alice'),
      await can('list', 'vic'),
      await can('create', 'vic'),
      await can('list', 'mallory'),
    ]).toEqual(['yes', 'yes', 'yes', 'no', 'no']);
  });

  it('answers the REST API only with a token: 401 without, 200 with the generated admin token', async () => {
    const without = await fetch(`${apiUrl}/api/v1/test-runs`);
    expect([without.status, without.headers.get('www-authenticate')]).toEqual([401, 'Bearer realm="kinfer"']);
    expect((await fetch(`${apiUrl}/api/v1/test-runs`, { headers: bearer })).status).toBe(200);
  });

  it('ran the three Deployments through the ReplicaSet controller', async () => {
    const pods = JSON.parse((await cluster.kubectl(['get', 'pods', '-n', ns, '-o', 'json'])).stdout).items;
    const components = pods.map((p: any) => [p.metadata.labels['app.kubernetes.io/component'], p.status.phase, p.metadata.ownerReferences[0].kind]).sort();
    expect(components).toEqual([
      ['callback', 'Running', 'ReplicaSet'],
      ['controller', 'Running', 'ReplicaSet'],
      ['predictor', 'Running', 'ReplicaSet'],
    ]);
  });

  it('runs the example InferenceJob to completion under the chart RBAC, signed with the chart-generated key', async () => {
    // The sample data as every tier gets it (`kinfer samples`), and the example job as shipped,
    // pointed at this suite's bucket and prefix.
    const samples = `${prefix}/demo`;
    const wrote = await runCommand(join(REPO_ROOT, 'bin', 'kinfer'), ['samples', samples, '--per-class', '4']);
    expect(wrote).toMatchObject({ code: 0 });
    const example = readFileSync(join(REPO_ROOT, 'deploy', 'examples', 'colors-test-run.yaml'), 'utf8').replaceAll('s3://kinfer-demo', samples);
    const applied = await cluster.kubectl(['apply', '-n', ns, '-f', '-'], example);
    expect(applied.code).toBe(0);
    const ij = await eventually(
      'the InferenceJob to finish',
      async () => {
        const obj = JSON.parse((await cluster.kubectl(['get', 'ij', 'colors-eval', '-n', ns, '-o', 'json'])).stdout);
        return ['Completed', 'Failed'].includes(obj.status?.phase) ? obj : undefined;
      },
      90_000,
    );
    expect(ij.status.phase).toBe('Completed');
    const dataset = (await buildColorDataset(sampleDatasetOptions(4))).filter((f) => f.drawn !== null);
    const ref = referenceMetrics(
      dataset.map((f) => NAMES.indexOf(f.label)),
      dataset.map((f) => NAMES.indexOf(f.drawn!)),
      NAMES.length,
    );
    const run: any = await (await fetch(`${apiUrl}/api/v1/test-runs/${ij.metadata.uid}`, { headers: bearer })).json();
    expect(outcome(run)).toEqual({ status: 'completed', error_message: null });
    expect(run.overall_metrics.accuracy).toBeCloseTo(ref.accuracy, 12);
    expect(run.failed_images).toBe(1);

    // The chart's predictor answers the same model online, with the same token.
    const page = (await (await fetch(`${apiUrl}/api/v1/test-runs/${ij.metadata.uid}/images?limit=1&filter_correct=true`, { headers: bearer })).json()) as {
      images: Array<{ image_path: string; predicted_label: string; predictions: unknown }>;
    };
    const image = page.images[0]!;
    const predicted = await fetch(`http://127.0.0.1:${predictorPort}/api/v1/predict`, {
      method: 'POST',
      headers: { ...bearer, 'content-type': 'application/json' },
      body: JSON.stringify({
        checkpoint_path: run.checkpoint_path,
        task_type: 'image_classification',
        image_url: `${samples}/colors/test/${image.image_path}`,
      }),
    });
    const answer = (await predicted.json()) as { predicted_label: string; predictions: unknown };
    expect([predicted.status, answer.predicted_label, answer.predictions]).toEqual([200, image.predicted_label, image.predictions]);

    // The runner's Job carries the chart's runner defaults.
    const job = JSON.parse((await cluster.kubectl(['get', 'job', `kinfer-${ij.metadata.uid}`, '-n', ns, '-o', 'json'])).stdout);
    const pod = job.spec.template;
    expect(pod.metadata.labels).toMatchObject({ team: 'vision', 'app.kubernetes.io/name': 'kinfer-runner' });
    expect(pod.spec.containers[0]).toMatchObject({
      image: 'ghcr.io/kinfer/kinfer:test',
      args: ['runner'],
      resources: { requests: { cpu: '100m', memory: '1Gi' }, limits: { memory: '4Gi' } },
    });
    // Leader election went through the chart's Role.
    const lease = await cluster.kubectl(['get', 'lease', '-n', ns, '-o', 'jsonpath={.items[*].spec.holderIdentity}']);
    expect(lease.stdout).toMatch(/^kinfer-controller-/);
  }, 120_000);

  it("runs the XAI example to completion: every image explained, overlays in the run's artifacts", async () => {
    const samples = `${prefix}/demo`;
    const example = readFileSync(join(REPO_ROOT, 'deploy', 'examples', 'colors-test-run-xai.yaml'), 'utf8').replaceAll('s3://kinfer-demo', samples);
    expect((await cluster.kubectl(['apply', '-n', ns, '-f', '-'], example)).code).toBe(0);
    const ij = await eventually(
      'the XAI InferenceJob to finish',
      async () => {
        const obj = JSON.parse((await cluster.kubectl(['get', 'ij', 'colors-explain', '-n', ns, '-o', 'json'])).stdout);
        return ['Completed', 'Failed'].includes(obj.status?.phase) ? obj : undefined;
      },
      90_000,
    );
    expect(ij.status.phase).toBe('Completed');
    const images: any[] = ((await (await fetch(`${apiUrl}/api/v1/test-runs/${ij.metadata.uid}/images?limit=1000`, { headers: bearer })).json()) as any).images;
    const readable = images.filter((r) => !r.error_message);
    expect(readable.length).toBeGreaterThan(0);
    for (const r of readable) {
      expect(r.xai).toMatchObject({ method: 'gradcam', heatmap_path: expect.stringMatching(/\/xai\/.+_gradcam\.jpg$/) });
      expect((await testStorage().read(r.xai.heatmap_path)).subarray(0, 2)).toEqual(Buffer.from([0xff, 0xd8]));
    }
  }, 120_000);

  it('the controller account has only what the chart grants', async () => {
    const can = async (verb: string, resource: string, namespace = ns) =>
      (await cluster.kubectl(['auth', 'can-i', verb, resource, '-n', namespace, `--as=system:serviceaccount:${ns}:kinfer-controller`])).stdout.trim();
    expect(await can('create', 'jobs.batch', 'default')).toBe('yes');
    expect(await can('patch', 'inferencejobs.kinfer.io/status')).toBe('yes');
    expect(await can('get', 'secrets')).toBe('no');
    expect(await can('delete', 'pods')).toBe('no');
    expect(await can('create', 'deployments.apps')).toBe('no');
    expect(await can('patch', 'leases.coordination.k8s.io', 'default')).toBe('no');
    const callback = await cluster.kubectl(['auth', 'can-i', '--list', '-n', ns, `--as=system:serviceaccount:${ns}:kinfer-callback`]);
    expect(callback.stdout).not.toMatch(/inferencejobs|secrets|jobs/);
  });

  it.each(readdirSync(join(REPO_ROOT, 'deploy', 'examples')).map((f) => [f]))(
    'the example %s passes a server-side dry run against the CRD the chart installed',
    async (file) => {
      // In a namespace of its own: the example job run above lives in the release's namespace.
      const dry = await cluster.kubectl([
        'apply',
        '--server-side',
        '--dry-run=server',
        '-n',
        'kinfer-system',
        '-f',
        join(REPO_ROOT, 'deploy', 'examples', file),
      ]);
      expect(dry.stderr).toBe('');
      expect(dry.stdout).toMatch(/inferencejob\.kinfer\.io\/[\w-]+ serverside-applied \(server dry run\)/);
    },
  );

  it('installed the CRD as a release object that uninstalling keeps (crds.keep)', async () => {
    const crd = JSON.parse((await cluster.kubectl(['get', 'crd', 'inferencejobs.kinfer.io', '-o', 'json'])).stdout);
    expect(crd.metadata.labels['app.kubernetes.io/managed-by']).toBe('Helm');
    expect(crd.metadata.annotations).toMatchObject({ 'meta.helm.sh/release-name': 'kinfer', 'helm.sh/resource-policy': 'keep' });
    const off = await helm(['template', 'k', CHART, '--set', 'database.url=postgres://x/y', '--set', 'crds.enabled=false']);
    expect(off.stdout).not.toContain('kind: CustomResourceDefinition');
  });

  it('helm upgrade keeps the token signing key', async () => {
    const key = async () => (await cluster.kubectl(['get', 'secret', 'kinfer-token-signing', '-n', ns, '-o', 'jsonpath={.data.private\\.pem}'])).stdout;
    const before = await key();
    expect(Buffer.from(before, 'base64').toString()).toMatch(/^-----BEGIN EC PRIVATE KEY-----/);
    const upgraded = await helm(['upgrade', 'kinfer', CHART, '-n', ns, ...valuesArgs]);
    expect(upgraded.code).toBe(0);
    expect(await key()).toBe(before);
  }, 60_000);
});

describe('plain manifests (deploy/manifests) for users without Helm', () => {
  it('are what the chart renders now', async () => {
    expect(readFileSync(MANIFESTS, 'utf8')).toBe(renderManifests());
  });

  it("the CRD the chart renders is the one in deploy/crds, but for Helm's labels and annotations", async () => {
    const rendered = (await helm(['template', 'k', CHART, '--set', 'database.url=postgres://x/y', '--show-only', 'templates/crds/inferencejobs.yaml'])).stdout;
    const strip = (crd: { metadata: Record<string, unknown> }) => ({ ...crd, metadata: { name: crd.metadata.name } });
    expect(strip(parseYaml(rendered))).toEqual(strip(parseYaml(readFileSync(join(REPO_ROOT, 'deploy', 'crds', 'kinfer.io_inferencejobs.yaml'), 'utf8'))));
  });

  it('pass a server-side dry run with kubectl apply -k', async () => {
    // --force-conflicts: the helm install above owns cluster-scoped objects of the same names.
    const dry = await cluster.kubectl([
      'apply',
      '--server-side',
      '--dry-run=server',
      '--field-manager=manifests-dry-run',
      '--force-conflicts',
      '-k',
      join(REPO_ROOT, 'deploy', 'manifests'),
    ]);
    expect(dry.stderr).toBe('');
    expect(dry.stdout).toMatch(/deployment\.apps\/kinfer-controller serverside-applied \(server dry run\)/);
    expect(dry.stdout).toMatch(/customresourcedefinition\.apiextensions\.k8s\.io\/inferencejobs\.kinfer\.io serverside-applied/);
  });
});

describe('the Kind tier script', () => {
  it('maps the NodePort that kind-values gives the API', () => {
    const kindConfig = readFileSync(join(REPO_ROOT, 'kind-config.yaml'), 'utf8');
    const values = readFileSync(join(REPO_ROOT, 'deploy', 'kind-values.yaml'), 'utf8');
    const nodePort = /nodePort: (\d+)/.exec(values)![1];
    expect(kindConfig).toMatch(new RegExp(`containerPort: ${nodePort}\\b`));
    // The GPU worker pattern matches the chart's GPU placement in kind-values.
    expect(kindConfig).toContain('kinfer.io/accelerator: nvidia-gpu');
    expect(values).toContain('kinfer.io/accelerator: nvidia-gpu');
  });

  it('is valid bash, and says what it needs when tools are missing', async () => {
    const script = join(REPO_ROOT, 'scripts', 'kind-up.sh');
    const run = (args: string[], env: NodeJS.ProcessEnv) => runCommand('/bin/bash', args, { env });
    expect((await run(['-n', script], process.env)).code).toBe(0);
    const missing = await run([script], { PATH: '/nonexistent' });
    expect(missing.code).toBe(127);
    expect(missing.stderr).toMatch(/kind:up needs docker kind kubectl helm/);
  });
});
