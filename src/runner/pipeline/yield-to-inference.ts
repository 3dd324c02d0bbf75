// The runner's own threads yield the cores to ONNX Runtime's. On a machine whose cores the
// session's intra-op threads fill (the CPU runner: one per core), whatever else runs preempts one
// of them, and a parallel section then waits for its slowest thread: the other one spins. Decoding
// the next batch, reporting the last one, drawing pictures and collecting garbage at a lower
// priority run in the session's gaps instead (between runs, its single-threaded operators), and
// when the session waits for its next batch they have the cores to themselves, so the pipeline
// never starves it for long. Linux only (a thread's nice value is its own there); elsewhere, and
// with nice 0, nothing changes.
import { readdirSync, readFileSync } from 'node:fs';
import { setPriority } from 'node:os';

/**
 * Threads that are the runner's rather than the session's: libuv's pool (file reads, sharp's
 * pipelines), libvips' workers, V8's platform workers (concurrent marking and sweeping). The main
 * thread is the process id. The session's threads (its worker thread and ONNX Runtime's pool) are
 * neither and keep their priority, as do threads created later by them.
 */
const RUNNER_THREADS = /^(libuv-worker|libvips|V8Worker)/;

/** Lowers the runner's own threads to `nice`; returns how many it lowered. Call once every session exists. */
export function yieldToInference(nice: number): number {
  if (process.platform !== 'linux' || nice <= 0) return 0;
  let lowered = 0;
  let tids: string[];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return 0;
  }
  for (const tid of tids) {
    let comm: string;
    try {
      comm = readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim();
    } catch {
      continue; // the thread has ended
    }
    if (Number(tid) !== process.pid && !RUNNER_THREADS.test(comm)) continue;
    try {
      // Linux applies a PRIO_PROCESS priority to the one thread whose id it is given.
      setPriority(Number(tid), nice);
      lowered++;
    } catch {
      // Not permitted (only raising a priority needs a privilege) or gone: leave it.
    }
  }
  return lowered;
}
