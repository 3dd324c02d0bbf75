// The e2e suites serve dist/dashboard. `npm test` builds it first; a local `npm run test:jest`
// after a change under src/dashboard would otherwise serve the bundle of the change before.
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

const SOURCES = resolve('src/dashboard');
// Written last by scripts/build-dashboard.ts: its time is the build's.
const BUILT = resolve('dist/dashboard/index.html');

/** The newest modification time of any file under `dir`. */
function newestMtime(dir: string): number {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .reduce((newest, entry) => Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs), 0);
}

/** Builds the dashboard when it is missing or older than a file of its sources. */
export function ensureDashboardBuilt(): void {
  const built = statSync(BUILT, { throwIfNoEntry: false })?.mtimeMs ?? -1;
  if (built >= newestMtime(SOURCES)) return;
  execFileSync(process.execPath, [resolve('scripts/build-dashboard.ts')], { stdio: 'inherit' });
}
