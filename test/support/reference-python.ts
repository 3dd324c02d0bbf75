// The reference libraries themselves (Ultralytics, torch, torchvision, torchmetrics, OpenCV, ONNX
// Runtime for Python), pinned in reference-requirements.txt, in a venv cached under
// ~/.cache/kinfer/py and named after the pins: built once (global setup), reused by every run.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative } from 'node:path';
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
 *
 * Its answer is kept (`~/.cache/kinfer/reference-answers`) under a hash of everything it was
 * computed from: the pinned libraries, the script, the input, and the content of every file or
 * folder the input names by absolute path (the generated datasets and models). The same question
 * is answered from there next time, with the files the script wrote into those folders (models it
 * exported): the reference libraries' own answer, without starting Python, torch and Ultralytics
 * again. A changed generator, script or pin asks anew. `KINFER_REFERENCE_ANSWERS=off` always asks.
 */
export function runReference<T>(script: string, input: unknown, opts: { cwd?: string } = {}): T {
  const dir = mkdtempSync(join(process.env.KINFER_TEST_DIR ?? '/tmp', 'reference-'));
  // The paths the input names, longest first (so a folder's files are not cut by the folder's name).
  const paths = [...new Set(absolutePathsIn(input))].sort((x, y) => y.length - x.length);
  const roots = [...paths, opts.cwd ?? dir];
  const before = paths.map(filesOf);
  const key = createHash('sha256')
    .update(JSON.stringify({ pins: pins(), script, input: withPlaceholders(JSON.stringify(input), roots), cwd: opts.cwd === undefined, before }))
    .digest('hex');
  const kept = join(cacheDir(), 'reference-answers', `${key}.json`);
  if (process.env.KINFER_REFERENCE_ANSWERS !== 'off' && existsSync(kept)) {
    const entry = JSON.parse(readFileSync(kept, 'utf8')) as KeptAnswer;
    for (const f of entry.files) {
      mkdirSync(dirname(join(paths[f.root]!, f.path)), { recursive: true });
      writeFileSync(join(paths[f.root]!, f.path), Buffer.from(f.base64, 'base64'));
    }
    return JSON.parse(withPaths(entry.answer, roots)) as T;
  }
  writeFileSync(join(dir, 'input.json'), JSON.stringify(input));
  writeFileSync(join(dir, 'script.py'), script);
  const out = execFileSync(referencePython(), [join(dir, 'script.py'), join(dir, 'input.json')], {
    cwd: opts.cwd ?? dir,
    maxBuffer: 512 * 2 ** 20,
    env: { ...process.env, YOLO_CONFIG_DIR: join(dir, 'yolo-config'), YOLO_OFFLINE: '1', HF_HUB_OFFLINE: '1', MPLBACKEND: 'Agg' },
    stdio: ['ignore', 'pipe', 'pipe'],
  }).toString();
  const last = out.trim().split('\n').at(-1)!;
  const answer = JSON.parse(last) as T;
  // What the script wrote into the folders it was given, to be written again with the answer.
  const files = paths.flatMap((root, i) => {
    const was = new Map(before[i]);
    return filesOf(root).flatMap(([path, hash]) =>
      was.get(path) === hash ? [] : [{ root: i, path, base64: readFileSync(join(root, path)).toString('base64') }],
    );
  });
  const entry: KeptAnswer = { answer: withPlaceholders(last, roots), files };
  mkdirSync(dirname(kept), { recursive: true });
  // Written whole, then renamed: a concurrent reader sees no half answer.
  writeFileSync(`${kept}.${process.pid}`, JSON.stringify(entry));
  renameSync(`${kept}.${process.pid}`, kept);
  return answer;
}

interface KeptAnswer {
  /** The JSON the script printed, with the paths of its run as placeholders. */
  answer: string;
  files: Array<{ root: number; path: string; base64: string }>;
}

/** Absolute paths that exist, anywhere in a JSON value. */
function absolutePathsIn(value: unknown): string[] {
  if (typeof value === 'string') return isAbsolute(value) && existsSync(value) ? [value] : [];
  if (Array.isArray(value)) return value.flatMap(absolutePathsIn);
  if (value && typeof value === 'object') return Object.values(value).flatMap(absolutePathsIn);
  return [];
}

/** A file's hash, or a folder's files (relative names, in order) with theirs. */
function filesOf(path: string): Array<[string, string]> {
  const hash = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
  if (!statSync(path).isDirectory()) return [['', hash(path)]];
  return readdirSync(path, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(path, join(e.parentPath, e.name)))
    .sort()
    .map((f) => [f, hash(join(path, f))]);
}

// The temporary paths of this run, written as placeholders in a kept answer and back on reading it.
const withPlaceholders = (text: string, roots: string[]) => roots.reduce((t, r, i) => t.replaceAll(r, `@@kinfer-root-${i}@@`), text);
const withPaths = (text: string, roots: string[]) => roots.reduce((t, r, i) => t.replaceAll(`@@kinfer-root-${i}@@`, r), text);
