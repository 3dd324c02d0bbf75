// Binaries of the local control plane. From KUBEBUILDER_ASSETS when set (the envtest convention;
// kube-controller-manager is used from there too when present), otherwise built once from Go
// modules at pinned versions and cached in ~/.cache/kinfer/bin. Kubernetes cannot be `go
// install`ed (its go.mod has replace lines), so a wrapper module requires k8s.io/kubernetes and
// replaces every staging module; etcd is built from its own wrapper module.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir } from '../cache-dir.ts';

export const KUBERNETES_VERSION = '1.34.4';
export const ETCD_VERSION = '3.6.16';

const STAGING_MODULES = [
  'api',
  'apiextensions-apiserver',
  'apimachinery',
  'apiserver',
  'cli-runtime',
  'client-go',
  'cloud-provider',
  'cluster-bootstrap',
  'code-generator',
  'component-base',
  'component-helpers',
  'controller-manager',
  'cri-api',
  'cri-client',
  'csi-translation-lib',
  'dynamic-resource-allocation',
  'endpointslice',
  'externaljwt',
  'kms',
  'kube-aggregator',
  'kube-controller-manager',
  'kube-proxy',
  'kube-scheduler',
  'kubectl',
  'kubelet',
  'metrics',
  'mount-utils',
  'pod-security-admission',
  'sample-apiserver',
  'sample-cli-plugin',
  'sample-controller',
];

export interface ControlPlaneBinaries {
  etcd: string;
  kubeApiserver: string;
  kubeControllerManager: string;
}

function goBuild(
  moduleDir: string,
  goMod: string,
  imports: string[],
  outputs: Array<{ pkg: string; out: string; ldflags: string }>,
  log: (line: string) => void,
): void {
  mkdirSync(moduleDir, { recursive: true });
  writeFileSync(join(moduleDir, 'go.mod'), goMod);
  writeFileSync(join(moduleDir, 'tools.go'), `//go:build tools\n\npackage tools\n\nimport (\n${imports.map((i) => `\t_ "${i}"\n`).join('')})\n`);
  const env = { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-mod=mod -modcacherw' };
  const run = (args: string[]) => execFileSync('go', args, { cwd: moduleDir, env, stdio: ['ignore', 'inherit', 'inherit'] });
  try {
    run(['mod', 'tidy']);
    for (const { pkg, out, ldflags } of outputs) {
      log(`go build ${pkg}`);
      run(['build', '-ldflags', ldflags, '-o', `${out}.partial`, pkg]);
      renameSync(`${out}.partial`, out);
    }
  } catch (err) {
    throw new Error(`building ${imports.join(', ')} from Go modules failed (needs Go >= 1.24 and the Go module proxy): ${(err as Error).message}`);
  }
}

/** Resolves (and builds when missing) the three binaries. The first build takes several minutes. */
export function controlPlaneBinaries(log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): ControlPlaneBinaries {
  const assets = process.env.KUBEBUILDER_ASSETS;
  const binDir = join(cacheDir(), 'bin');
  const built = {
    etcd: join(binDir, `etcd-v${ETCD_VERSION}`),
    kubeApiserver: join(binDir, `kube-apiserver-v${KUBERNETES_VERSION}`),
    kubeControllerManager: join(binDir, `kube-controller-manager-v${KUBERNETES_VERSION}`),
  };
  const fromAssets = (name: string) => (assets && existsSync(join(assets, name)) ? join(assets, name) : undefined);
  const result: ControlPlaneBinaries = {
    etcd: fromAssets('etcd') ?? built.etcd,
    kubeApiserver: fromAssets('kube-apiserver') ?? built.kubeApiserver,
    kubeControllerManager: fromAssets('kube-controller-manager') ?? built.kubeControllerManager,
  };
  mkdirSync(binDir, { recursive: true });
  const kubeMissing = [result.kubeApiserver, result.kubeControllerManager].filter((b) => b.startsWith(binDir) && !existsSync(b));
  if (kubeMissing.length > 0) {
    log(`building Kubernetes v${KUBERNETES_VERSION} control plane from Go modules (once; cached in ${binDir})`);
    const ldflags = `-s -w -X k8s.io/component-base/version.gitVersion=v${KUBERNETES_VERSION}`;
    const replaces = STAGING_MODULES.map((m) => `\tk8s.io/${m} => k8s.io/${m} v0.${KUBERNETES_VERSION.split('.').slice(1).join('.')}`).join('\n');
    goBuild(
      join(cacheDir(), 'build', `kubernetes-v${KUBERNETES_VERSION}`),
      `module kinfer.local/controlplane\n\ngo 1.24\n\nrequire k8s.io/kubernetes v${KUBERNETES_VERSION}\n\nreplace (\n${replaces}\n)\n`,
      ['k8s.io/kubernetes/cmd/kube-apiserver', 'k8s.io/kubernetes/cmd/kube-controller-manager'],
      [
        { pkg: 'k8s.io/kubernetes/cmd/kube-apiserver', out: built.kubeApiserver, ldflags },
        { pkg: 'k8s.io/kubernetes/cmd/kube-controller-manager', out: built.kubeControllerManager, ldflags },
      ].filter((o) => kubeMissing.includes(o.out)),
      log,
    );
  }
  if (result.etcd === built.etcd && !existsSync(built.etcd)) {
    log(`building etcd v${ETCD_VERSION} from Go modules (once; cached in ${binDir})`);
    goBuild(
      join(cacheDir(), 'build', `etcd-v${ETCD_VERSION}`),
      `module kinfer.local/etcd\n\ngo 1.24\n\nrequire go.etcd.io/etcd/server/v3 v${ETCD_VERSION}\n`,
      ['go.etcd.io/etcd/server/v3'],
      [{ pkg: 'go.etcd.io/etcd/server/v3', out: built.etcd, ldflags: '-s -w' }],
      log,
    );
  }
  return result;
}
