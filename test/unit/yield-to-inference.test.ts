// yieldToInference in a process of its own (it changes the priority of the threads it runs in):
// the main thread and the pools it names go to the nice value asked for; a worker thread started
// before (where a runner's session and ONNX Runtime's threads live) keeps its own, and a thread
// the main thread starts afterwards inherits the lower one.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const module = fileURLToPath(new URL('../../src/runner/pipeline/yield-to-inference.ts', import.meta.url));

const child = `
import { readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
const { yieldToInference } = await import(${JSON.stringify(module)});
// The session's thread: started first, as the runner loads its model before it yields.
const session = new Worker('import { parentPort } from "node:worker_threads"; parentPort.once("message", () => {}); parentPort.postMessage("up");', { eval: true });
await new Promise((r) => session.once('message', r));
await readFile(process.execPath); // libuv's pool exists
const lowered = yieldToInference(17);
const later = new Worker('setTimeout(() => {}, 200)', { eval: true });
await new Promise((r) => setTimeout(r, 50));
// /proc/<pid>/task/<tid>/stat: the comm may hold spaces; the fields after its ')' are positional (nice is the 19th of the line).
const threads = readdirSync('/proc/self/task').map((tid) => {
  const stat = readFileSync('/proc/self/task/' + tid + '/stat', 'utf8');
  return { tid: Number(tid), comm: readFileSync('/proc/self/task/' + tid + '/comm', 'utf8').trim(), nice: Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]) };
});
console.log(JSON.stringify({ pid: process.pid, lowered, threads }));
session.terminate(); later.terminate();
`;

describe('yieldToInference', () => {
  it("lowers the runner's threads, not the session's thread started before it", async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', child]);
    const { pid, lowered, threads } = JSON.parse(stdout) as { pid: number; lowered: number; threads: Array<{ tid: number; comm: string; nice: number }> };
    if (process.platform !== 'linux') {
      expect(lowered).toBe(0);
      return;
    }
    const main = threads.find((t) => t.tid === pid)!;
    expect(main.nice).toBe(17);
    const pool = threads.filter((t) => /^(libuv-worker|V8Worker)/.test(t.comm));
    expect(pool.length).toBeGreaterThan(0);
    expect(pool.every((t) => t.nice === 17)).toBe(true);
    // Two worker threads: the session's (started before: 0) and the later one (inherits 17).
    const workers = threads.filter((t) => t.comm === 'WorkerThread' || t.comm.startsWith('node:'));
    expect(workers.map((t) => t.nice).sort((a, b) => a - b)).toEqual([0, 17]);
    expect(lowered).toBe(1 + pool.length);
  });
});
