// The e2e suites serve dist/dashboard. `npm test` builds it first; a local `npm run test:jest`
// after a change under src/dashboard would otherwise serve the bundle of the change before.
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './container-image.ts';

const SOURCES = join(repoRoot, 'src', 'dashboard');
// Written last by scripts/build-dashboard.ts: its time is the build's.
const BUILT = join(repoRoot, 'dist', 'dashboard', 'index.html');

/** The newest modification time under `dir`: its files', and its folders' (a file removed). */
function newestMtime(dir: string): number {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .map((entry) => statSync(join(entry.parentPath, entry.name)).mtimeMs)
    .reduce((newest, mtime) => Math.max(newest, mtime), statSync(dir).mtimeMs);
}

/** Builds the dashboard when it is missing or older than its sources. */
export function ensureDashboardBuilt(): void {
  const built = statSync(BUILT, { throwIfNoEntry: false })?.mtimeMs ?? -1;
  if (built >= newestMtime(SOURCES)) return;
  execFileSync(process.execPath, [join(repoRoot, 'scripts', 'build-dashboard.ts')], { stdio: 'inherit' });
}
