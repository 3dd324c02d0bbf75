// The reference libraries themselves (Ultralytics, torch, torchvision, torchmetrics, OpenCV, ONNX
// Runtime for Python), pinned in reference-requirements.txt, in a venv cached under
// ~/.cache/kinfer/py and named after the pins: built once (global setup), reused by every run.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheDir } from '../../src/local/cache-dir.ts';

const REQUIREMENTS = fileURLToPath(new URL('./reference-requirements.txt', import.meta.url));

function pins(): string[] {
  return readFileSync(REQUIREMENTS, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
}

/** Where the venv of these pins lives: `~/.cache/kinfer/py/<name>-<hash of the pins>`. */
export function venvOf(name: string, requirements: string[]): string {
  const key = createHash('sha256')
    .update(requirements.join('\n') + '\n')
    .digest('hex')
    .slice(0, 12);
  return join(cacheDir(), 'py', `${name}-${key}`);
}

export function referenceVenv(): string {
  return venvOf('reference', pins());
}

/** The Python of a cached venv with these pins, installing it first when it is not cached. */
export function cachedPython(name: string, requirements: string[]): string {
  const venv = venvOf(name, requirements);
  const bin = join(venv, 'bin', 'python');
  if (existsSync(join(venv, '.ready'))) return bin;
  const partial = `${venv}.partial`;
  rmSync(partial, { recursive: true, force: true });
  execFileSync('python3', ['-m', 'venv', partial], { stdio: 'ignore' });
  execFileSync(join(partial, 'bin', 'python'), ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', ...requirements], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  writeFileSync(join(partial, '.ready'), requirements.join('\n'));
  rmSync(venv, { recursive: true, force: true });
  renameSync(partial, venv);
  return bin;
}

/** The reference venv's Python, installing it first when it is not cached. */
export function referencePython(): string {
  return cachedPython('reference', pins());
}

/**
 * Runs a Python script with the reference venv on one JSON input; parses the JSON it prints last.
 * Ultralytics' own settings and downloads stay inside the test directory.
 */
export function runReference<T>(script: string, input: unknown, opts: { cwd?: string } = {}): T {
  const dir = mkdtempSync(join(process.env.KINFER_TEST_DIR ?? '/tmp', 'reference-'));
  writeFileSync(join(dir, 'input.json'), JSON.stringify(input));
  writeFileSync(join(dir, 'script.py'), script);
  const out = execFileSync(referencePython(), [join(dir, 'script.py'), join(dir, 'input.json')], {
    cwd: opts.cwd ?? dir,
    maxBuffer: 512 * 2 ** 20,
    env: { ...process.env, YOLO_CONFIG_DIR: join(dir, 'yolo-config'), YOLO_OFFLINE: '1', HF_HUB_OFFLINE: '1', MPLBACKEND: 'Agg' },
    stdio: ['ignore', 'pipe', 'pipe'],
  }).toString();
  const last = out.trim().split('\n').at(-1)!;
  return JSON.parse(last) as T;
}
