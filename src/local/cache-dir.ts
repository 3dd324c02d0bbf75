// The kinfer cache (~/.cache/kinfer, or KINFER_CACHE): built binaries, the Node download, the
// reference Python environment. Shared by the local tooling, the tests and the benchmarks.
import { homedir } from 'node:os';
import { join } from 'node:path';

export function cacheDir(): string {
  return process.env.KINFER_CACHE ?? join(homedir(), '.cache', 'kinfer');
}
