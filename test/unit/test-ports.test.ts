// The test support's freePort: two Jest workers drawing at random from the same 12,768 ports, or
// one suite drawing a control plane's three before binding any, must never get the same port
// (a kube-apiserver failed in CI with EADDRINUSE). Real child processes sharing one test dir.
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const ports = fileURLToPath(new URL('../support/ports.ts', import.meta.url));

/** `count` ports drawn concurrently by a new Node process whose test dir is `dir`. */
async function draw(dir: string, count: number): Promise<number[]> {
  const body = `
const { freePort } = await import(${JSON.stringify(ports)});
console.log(JSON.stringify(await Promise.all(Array.from({ length: ${count} }, () => freePort()))));`;
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', body], { env: { ...process.env, KINFER_TEST_DIR: dir } });
  return JSON.parse(stdout) as number[];
}

describe('freePort', () => {
  it('hands each port to one caller only, within a process and across processes of one test run', async () => {
    // Drawn at random without claims, 2 x 300 of 12,768 ports repeat one with probability 0.999.
    const dir = mkdtempSync(join(process.env.KINFER_TEST_DIR!, 'ports-'));
    const [a, b] = await Promise.all([draw(dir, 300), draw(dir, 300)]);
    expect(a).toHaveLength(300);
    expect(b).toHaveLength(300);
    expect(new Set([...a, ...b]).size).toBe(600);
    for (const p of [...a, ...b]) expect(p >= 20_000 && p <= 32_767).toBe(true);
  });
});
