import { createServer } from 'node:net';

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

/** A port free right now, outside the ephemeral range. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW + 1));
    if (await bindable(port)) return port;
  }
  throw new Error(`no free port between ${LOW} and ${HIGH}`);
}
