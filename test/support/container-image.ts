// The kinfer image as CI builds it: trainer-image/build.sh (buildah, overlay or vfs storage, chroot isolation) on
// the offline base from trainer-image/local-base.sh. Built once per test run and kept in the
// buildah store under the kinfer cache.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
export const TEST_IMAGE = 'localhost/kinfer:test';

export async function buildah(...args: string[]): Promise<string> {
  const { stdout } = await run(`${repoRoot}/trainer-image/buildah.sh`, args, { maxBuffer: 16 * 2 ** 20 });
  return stdout.trim();
}

export async function buildTestImage(): Promise<{ image: string; sizeBytes: number }> {
  const { stderr } = await run(`${repoRoot}/trainer-image/build.sh`, [TEST_IMAGE], { maxBuffer: 64 * 2 ** 20, timeout: 20 * 60_000 });
  // For the CI log: npm's warnings (a skipped optional dependency, a retried install) inside the build.
  const warnings = stderr.split('\n').filter((line) => /npm (warn|error)|installing again/i.test(line) && !/Unknown project config|using --force/.test(line));
  if (warnings.length > 0) process.stderr.write(`image build warnings:\n${warnings.slice(0, 40).join('\n')}\n`);
  const size = await buildah('images', '--format', '{{.Size}}', '--noheading', TEST_IMAGE);
  // Uncompressed, as `docker images` shows it.
  return { image: TEST_IMAGE, sizeBytes: parseHumanSize(size) };
}

function parseHumanSize(text: string): number {
  const m = /^([\d.]+)\s*([kMG]?B)$/.exec(text.trim());
  if (!m) throw new Error(`unexpected image size: ${text}`);
  return Number(m[1]) * { B: 1, kB: 1e3, MB: 1e6, GB: 1e9 }[m[2] as 'B' | 'kB' | 'MB' | 'GB'];
}
