import { mkdirSync, openSync, closeSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

/**
 * Ports handed out here come from below the kernel's ephemeral range (32768-60999 on Linux):
 * a process that binds port 0 gets an ephemeral one, so it can never take a port chosen here
 * between the choice and its use (a Pod that starts seconds later, a service started by Helm).
 */
const LOW = 20_000;
const HIGH = 32_767;

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    // All interfaces: Pods of the local cluster bind 0.0.0.0.
    server.listen(port, '0.0.0.0', () => server.close(() => resolve(true)));
  });
}

/** Ports claimed by this process when no test directory is shared (outside Jest's setup). */
const claimedHere = new Set<number>();

/**
 * Claims a port for this whole test run. A port free now is not free a second later: two Jest
 * workers (or two calls before either binds, like a control plane's three ports) could draw the
 * same one, and the later bind fails with EADDRINUSE (a kube-apiserver did so in CI). A file
 * created exclusively in the run's shared directory makes the choice unique across workers; the
 * directory goes with the run.
 */
function claim(port: number): boolean {
  const dir = process.env.KINFER_TEST_DIR;
  if (!dir) {
    if (claimedHere.has(port)) return false;
    claimedHere.add(port);
    return true;
  }
  const claims = join(dir, 'ports');
  mkdirSync(claims, { recursive: true });
  try {
    closeSync(openSync(join(claims, String(port)), 'wx'));
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

/** A port free right now, outside the ephemeral range, and handed to no one else in this test run. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW + 1));
    if (claim(port) && (await bindable(port))) return port;
  }
  throw new Error(`no free port between ${LOW} and ${HIGH}`);
}
