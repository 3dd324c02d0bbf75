// How many ONNX Runtime sessions a runner runs its batches on, and each one's threads.
//
// ONNX Runtime cuts every operator into one piece per intra-op thread and waits at its end for the
// slowest piece (MLAS: docs/scaling.md, "Why inference loses more than the runner takes"). When the
// runner's own thread takes a core for a moment (a JPEG decode, YOLO's decode, the collector), the
// piece on that core ends late and the session's other thread waits for it. Sessions of their own,
// each running its part of the batch (or a whole batch of its own) with its share of the threads,
// have no barrier between them: a preempted session holds back only itself. The price is a copy of
// the model and its arena a session, so `auto` makes two only for a model small enough that a
// second copy costs little, and large enough that inference is what bounds the job.
import type { RunnerEnv } from '../../contract/index.ts';

export type SessionsSetting = RunnerEnv['SESSIONS'];

/** The largest model `auto` splits: a second copy of it, and its arena, are the memory it costs. */
export const AUTO_SPLIT_MAX_MODEL_BYTES = 32 * 2 ** 20;

/**
 * The smallest: below it inference takes microseconds an image and the pipeline, not the session,
 * bounds the job. bench:memory's colour classifier (708 bytes, 32x32) made 2,253-2,372 images/s
 * split against 2,165-2,415 whole, and kept 14 MiB more (its peak at 100k images 1.08-1.10x its
 * peak at 1k, against 1.06-1.07x).
 */
export const AUTO_SPLIT_MIN_MODEL_BYTES = 2 ** 20;

export interface SplitInputs {
  setting: SessionsSetting;
  /** The intra-op threads of the job (INTRA_OP_THREADS). */
  threads: number;
  /** Every execution provider is the CPU's: a GPU runs a batch whole. */
  cpuOnly: boolean;
  /** Explanations read the model's one session (and its outputs whole). */
  explains: boolean;
  modelBytes: number;
}

/**
 * The intra-op threads of each session: one entry, all the threads, for one session. `auto` makes
 * two sessions of half the threads each where there is an even number of them, the model is from
 * 1 to 32 MiB and the job runs on the CPU alone; a number asks for that many (at most one a
 * thread). A batch is then cut into parts, one a session, where the model's batch dimension is
 * dynamic, and goes whole to the least busy session where it is fixed (Ultralytics' default
 * export: batch 1) or holds a single image.
 */
export function sessionThreads(o: SplitInputs): number[] {
  if (!o.cpuOnly || o.explains) return [o.threads];
  const small = o.modelBytes >= AUTO_SPLIT_MIN_MODEL_BYTES && o.modelBytes <= AUTO_SPLIT_MAX_MODEL_BYTES;
  const asked = o.setting === 'auto' ? (o.threads % 2 === 0 && small ? 2 : 1) : o.setting;
  const n = Math.max(1, Math.min(asked, o.threads));
  return Array.from({ length: n }, (_, i) => Math.floor(o.threads / n) + (i < o.threads % n ? 1 : 0));
}

/**
 * A batch of `rows` cut into contiguous parts, one a session, as even as they can be (the first
 * take one more); fewer parts than sessions when there are fewer rows.
 */
export function partSizes(rows: number, sessions: number): number[] {
  const n = Math.max(1, Math.min(sessions, rows));
  return Array.from({ length: n }, (_, i) => Math.floor(rows / n) + (i < rows % n ? 1 : 0));
}
