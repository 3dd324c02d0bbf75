// `kinfer run`: a model on local images (or s3:// ones), no server, through exactly the path of an
// inference job: the same admission (src/controller/admission), the same mapping to the runner's
// environment, and the runner's own runJob (listing, task, post-processing, visualizations),
// whose progress and per-image results come here instead of to the callback service.
//
// Exit codes: 0 every image processed; 1 the run finished but some images could not be read (they
// are listed); 2 the request was refused (missing or invalid checkpoint, image or folder, a model
// that cannot serve the task, no images, an invalid option); 3 the run itself failed (src/cli/cli-error.ts).
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import cliProgress from 'cli-progress';
import { pino } from 'pino';
import {
  errorCodeOf,
  OBJECT_TASK_TYPES,
  parseRunnerEnv,
  fromMetadataProps,
  TaskType,
  XaiMethod,
  type ImageResult,
  type JobErrorCode,
} from '../contract/index.ts';
import { Admission } from '../controller/admission/admission.ts';
import { ModelInspector } from '../controller/admission/model-inspector.ts';
import { newJobOf, runnerEnvFor, type InferenceJobDefinition } from '../controller/job-mapping.ts';
import type { Job } from '../db/job-store.ts';
import { ObjectStore } from '../runner/io/object-store.ts';
import { runJob } from '../runner/job.ts';
import { PARTS_FOLDER } from '../runner/pipeline/parts.ts';
import { StorageClient } from '../storage/object-store.ts';
import { CliError, EXIT } from './cli-error.ts';
import { whenReaderGone } from './reader-gone.ts';
import { exitCodeOf, onStopSignals } from './stop-signals.ts';

/** The run's stop signal's reason when stdout's reader left (`kinfer run ... | head`). */
class ReaderGone extends Error {
  constructor() {
    super('the reader of stdout left');
    this.name = 'ReaderGone';
  }
}

/** The run's stop signal's reason: a signal the user sent. */
class RunInterrupted extends Error {
  readonly signal: 'SIGINT' | 'SIGTERM';
  constructor(signal: 'SIGINT' | 'SIGTERM') {
    super(`interrupted by ${signal}`);
    this.name = 'RunInterrupted';
    this.signal = signal;
  }
}

export interface LocalRunOptions {
  checkpoint: string;
  image?: string | undefined;
  inputDir?: string | undefined;
  task?: string | undefined;
  outputDir?: string | undefined;
  conf?: number | undefined;
  iou?: number | undefined;
  maxDet?: number | undefined;
  xai?: string | undefined;
  json?: boolean | undefined;
  topK: number;
  batchSize: number;
}

/** Errors of the runner that mean the input was wrong, not that the run broke. */
const REFUSED_CODES: ReadonlySet<JobErrorCode> = new Set([
  'DATASET_INVALID',
  'OBJECT_NOT_FOUND',
  'MODEL_NOT_ONNX',
  'MODEL_METADATA_INVALID',
  'INVALID_STORAGE_URI',
]);

/** How the CLI spells a job field in messages. */
const FLAG: Record<string, string> = {
  checkpoint_path: '--checkpoint',
  task_type: '--task',
  'input_config.image_path': '--image',
  'input_config.dataset_path': '--input-dir',
  enable_xai: '--xai',
  xai_method: '--xai',
};
const flagOf = (field: string) => FLAG[field] ?? field;

const local = (p: string) => (/^[a-z0-9]+:\/\//.test(p) ? p : pathToFileURL(resolve(p)).href);
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

/** What is wrong with a local path given for a file or a folder, if anything (remote ones: the admission checks them). */
async function pathProblem(path: string, kind: 'file' | 'dir'): Promise<'missing' | 'file' | 'dir' | undefined> {
  if (/^[a-z0-9]+:\/\//.test(path)) return undefined;
  const s = await stat(path).catch(() => null);
  if (!s) return 'missing';
  if (kind === 'file' && s.isDirectory()) return 'dir';
  if (kind === 'dir' && !s.isDirectory()) return 'file';
  return undefined;
}

/** The task the model says it does (Ultralytics' `task` in metadata_props or the sidecar), if any. */
async function taskOfModel(storage: StorageClient, models: ModelInspector, checkpoint: string): Promise<TaskType | undefined> {
  const files = await models.inspect(checkpoint, AbortSignal.timeout(60_000)).catch((err: Error) => {
    throw new CliError(`--checkpoint: not an ONNX model: ${err.message}`);
  });
  if (!files) throw new CliError(`checkpoint not found: ${checkpoint}`);
  const raw = fromMetadataProps(files.header.metadataProps).task ?? files.sidecar?.task;
  const known: Record<string, TaskType> = {
    classify: 'image_classification',
    detect: 'object_detection',
    segment: 'instance_segmentation',
    pose: 'pose_estimation',
  };
  const task = raw === undefined ? undefined : (known[raw] ?? raw);
  return TaskType.safeParse(task).success ? (task as TaskType) : undefined;
}

/** One line for people about one image. */
export function describeResult(r: ImageResult, task: TaskType): string {
  if (r.error) return `${r.image_path}: ERROR ${r.error}`;
  if (OBJECT_TASK_TYPES.includes(task)) {
    const objects = r.detections ?? [];
    if (objects.length === 0) return `${r.image_path}: no objects`;
    const counts = new Map<string, number>();
    for (const d of objects) counts.set(d.class_name, (counts.get(d.class_name) ?? 0) + 1);
    const parts = [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([name, n]) => `${n} ${name}`);
    return `${r.image_path}: ${objects.length} object${objects.length === 1 ? '' : 's'}: ${parts.join(', ')}`;
  }
  if (task === 'semantic_segmentation') return `${r.image_path}: ${(r.predictions ?? []).map((p) => `${p.class_name} ${pct(p.confidence)}`).join(', ')}`;
  return `${r.image_path}: ${r.predicted_label} (${pct(r.confidence ?? 0)})`;
}

export async function localRun(
  opts: LocalRunOptions,
  out: (line: string) => void,
  err: (text: string) => void = (text) => void process.stderr.write(text),
): Promise<number> {
  if (Boolean(opts.image) === Boolean(opts.inputDir)) throw new CliError('give exactly one of --image or --input-dir');
  const model = await pathProblem(opts.checkpoint, 'file');
  if (model === 'missing') throw new CliError(`checkpoint not found: ${opts.checkpoint}`);
  if (model === 'dir') throw new CliError(`--checkpoint: ${opts.checkpoint} is a folder, not an ONNX model`);
  const image = opts.image && (await pathProblem(opts.image, 'file'));
  if (image === 'missing') throw new CliError(`image not found: ${opts.image}`);
  if (image === 'dir') throw new CliError(`--image: ${opts.image} is a folder (--input-dir runs every image under it)`);
  const folder = opts.inputDir && (await pathProblem(opts.inputDir, 'dir'));
  if (folder === 'missing') throw new CliError(`folder not found: ${opts.inputDir}`);
  if (folder === 'file') throw new CliError(`--input-dir: ${opts.inputDir} is a file, not a folder (--image runs one image)`);
  if (opts.outputDir && (await pathProblem(opts.outputDir, 'dir')) === 'file') throw new CliError(`--output-dir: ${opts.outputDir} is a file, not a folder`);
  if (opts.task !== undefined && !TaskType.safeParse(opts.task).success) throw new CliError(`--task must be one of ${TaskType.options.join(', ')}`);

  const storage = new StorageClient({
    region: process.env.AWS_REGION ?? 'us-east-1',
    endpoint: process.env.S3_ENDPOINT,
    accessKeyId: process.env.AWS_ACCESS_KEY_ID,
    secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY,
  });
  const models = new ModelInspector(storage);
  const checkpoint = local(opts.checkpoint);
  const task = (opts.task as TaskType | undefined) ?? (await taskOfModel(storage, models, checkpoint));
  if (!task)
    throw new CliError(`the model does not say which task it does (no task in its metadata_props or sidecar): give --task (${TaskType.options.join(', ')})`);

  // The same definition and admission as an inference job submitted through the API.
  const definition: InferenceJobDefinition = {
    kind: 'inference_job',
    name: null,
    task_type: task,
    checkpoint_path: checkpoint,
    model: null,
    inference_type: opts.image ? 'single' : 'dataset',
    input_config: opts.image ? { image_path: local(opts.image) } : { dataset_path: local(opts.inputDir!) },
    enable_xai: opts.xai !== undefined,
    xai_method: (opts.xai as XaiMethod | undefined) ?? null,
    // The CLI explains every image it is given.
    xai_config: opts.xai !== undefined ? { images: 'all' } : null,
    parallelism: 1,
    backoff_limit: 0,
  };
  if (opts.xai !== undefined && !XaiMethod.safeParse(opts.xai).success) throw new CliError(`--xai must be one of ${XaiMethod.options.join(', ')}`);
  const admitted = await new Admission({ storage, models, timeoutMs: 60_000 }).admit(definition, flagOf);
  if (!admitted.admitted) throw new CliError(admitted.problems.map((p) => `${flagOf(p.field)}: ${p.message}`).join('; '));
  const id = randomUUID();
  const row = { ...newJobOf(definition).row, id, trace_id: id } as unknown as Job;

  // Explanations are files: without --output-dir they go where the reference tool puts them.
  const outputDir = opts.outputDir ? resolve(opts.outputDir) : opts.xai !== undefined ? resolve('results/inference') : undefined;
  const scratch = outputDir ?? (await mkdtemp(join(tmpdir(), 'kinfer-run-')));
  if (outputDir)
    await mkdir(outputDir, { recursive: true }).catch((e: Error) => {
      throw new CliError(`cannot make the output folder ${outputDir}: ${e.message}`);
    });
  const env = parseRunnerEnv({
    ...runnerEnvFor(
      'inference_job',
      row,
      {
        callbackUrl: 'http://127.0.0.1:9/not-used',
        artifactsUri: pathToFileURL(scratch).href,
        awsRegion: process.env.AWS_REGION ?? 'us-east-1',
        s3Endpoint: process.env.S3_ENDPOINT,
        awsAccessKeyId: process.env.AWS_ACCESS_KEY_ID,
        awsSecretAccessKey: process.env.AWS_SECRET_ACCESS_KEY,
        batchSize: opts.batchSize,
      },
      'local',
    ),
    SAVE_VISUALIZATIONS: outputDir ? 'true' : 'false',
    RESULTS_BATCH_SIZE: '1',
    // With --xai, every class's confidence (the reference CLI prints them all).
    ...(opts.xai !== undefined ? { TOP_K: '100000' } : {}),
    ...(opts.conf !== undefined ? { CONF_THRESHOLD: String(opts.conf) } : {}),
    ...(opts.iou !== undefined ? { IOU_THRESHOLD: String(opts.iou) } : {}),
    ...(opts.maxDet !== undefined ? { MAX_DET: String(opts.maxDet) } : {}),
  });

  const results: ImageResult[] = [];
  const waiting = new Map<number, ImageResult>();
  let next = 0;
  const bar =
    opts.inputDir && process.stderr.isTTY
      ? new cliProgress.SingleBar({ format: '{bar} {value}/{total} images | {eta_formatted} left', stream: process.stderr }, cliProgress.Presets.shades_classic)
      : undefined;
  const started = performance.now();
  const store = new ObjectStore({
    region: env.AWS_REGION,
    endpoint: env.S3_ENDPOINT,
    accessKeyId: env.AWS_ACCESS_KEY_ID,
    secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
  });
  let done: NonNullable<Awaited<ReturnType<typeof runJob>>>;
  // Ctrl-C (or SIGTERM) stops the run at its next image, and the scratch folder still goes; a
  // second one ends the process at once (Node's default once these handlers are spent).
  const interrupt = new AbortController();
  const releaseSignals = onStopSignals((signal) => interrupt.abort(new RunInterrupted(signal)), ['SIGINT', 'SIGTERM']);
  // `kinfer run ... | head`: the run stops as on a signal, so that its writes in flight end before
  // its scratch folder goes (exiting at once left the folder, or a write made it again).
  whenReaderGone(() => interrupt.abort(new ReaderGone()));
  try {
    // One shard: runJob always reports the job.
    done = (await runJob({
      env,
      store,
      log: pino({ level: process.env.LOG_LEVEL ?? 'silent' }),
      signal: interrupt.signal,
      artifactsUri: pathToFileURL(scratch).href,
      callbacks: {
        async progress(p) {
          if (!bar) return;
          if (p.processed_images === 0) bar.start(p.total_images ?? 0, 0);
          else bar.update(p.processed_images);
        },
        async imageResults(batch) {
          // Interrupted: what is in flight is dropped, so that the count said is what was printed.
          if (interrupt.signal.aborted) return;
          for (const r of batch) {
            results.push(r);
            waiting.set(r.image_index, r);
          }
          // Lines in listing order: a result that comes early waits for those before it.
          for (let r = waiting.get(next); r; r = waiting.get(next)) {
            waiting.delete(next++);
            if (opts.json) continue;
            // Clear the progress bar's line first; it draws itself again at the next update.
            if (bar) err('\r\x1b[2K');
            out(describeResult(opts.image ? { ...r, image_path: opts.image } : r, task));
          }
        },
      },
    }))!;
  } catch (e) {
    bar?.stop();
    // Nobody reads what would come next: nothing more to say, as when it exited at once.
    if (e instanceof ReaderGone) return EXIT.ok;
    if (e instanceof RunInterrupted) throw new CliError(`interrupted (${e.signal}) after ${next} images; batch_results.json not written`, exitCodeOf(e.signal));
    const code = errorCodeOf(e);
    throw new CliError(`${REFUSED_CODES.has(code) ? '' : 'the run failed: '}${(e as Error).message}`, REFUSED_CODES.has(code) ? EXIT.refused : EXIT.failed);
  } finally {
    releaseSignals();
    whenReaderGone(undefined);
    // The committed parts serve a resumed runner; a local run never resumes (a new job each time),
    // and they were one file per image in --output-dir.
    await rm(outputDir ? join(outputDir, PARTS_FOLDER) : scratch, { recursive: true, force: true });
  }
  bar?.stop();
  results.sort((a, b) => a.image_index - b.image_index);
  const failed = results.filter((r) => r.error !== null).length;
  const exitCode = failed > 0 ? EXIT.someImagesFailed : EXIT.ok;

  // Without --output-dir the artifacts went to a scratch folder that is gone: do not point at them.
  if (!outputDir) for (const r of results) Object.assign(r, r.mask_path ? { mask_path: null } : {}, r.visualization_path ? { visualization_path: null } : {});

  if (opts.image) {
    const r = results[0]!;
    if (opts.json) {
      out(JSON.stringify(r, null, 2));
      return exitCode;
    }
    if (r.error) throw new CliError(`${opts.image}: ${r.error}`, EXIT.someImagesFailed);
    if (task === 'image_classification')
      for (const p of (r.predictions ?? []).slice(0, opts.xai !== undefined ? undefined : opts.topK))
        out(`  ${p.class_name.padEnd(20)} ${(p.confidence * 100).toFixed(2)}%`);
    if (r.visualization_path) out(`visualization: ${relative(process.cwd(), new URL(r.visualization_path).pathname)}`);
    if (r.xai) out(`explanation (${r.xai.method}): ${relative(process.cwd(), new URL(r.xai.heatmap_path).pathname)}`);
    return exitCode;
  }

  const file = join(outputDir ?? process.cwd(), 'batch_results.json');
  const payload = {
    checkpoint: opts.checkpoint,
    task_type: task,
    input_dir: opts.inputDir,
    total_images: done.total_images,
    failed_images: failed,
    results: results.map((r) => ({
      ...r,
      predictions: r.predictions?.slice(0, task === 'image_classification' ? opts.topK : undefined) ?? null,
      // Every class's confidence by name, and the explanation's picture, as the reference tool writes them.
      ...(opts.xai !== undefined
        ? {
            scores: Object.fromEntries((r.predictions ?? []).map((p) => [p.class_name, p.confidence])),
            overlay_path: r.xai ? new URL(r.xai.heatmap_path).pathname : null,
          }
        : {}),
    })),
  };
  await writeFile(file, `${JSON.stringify(payload, null, 2)}\n`);
  const seconds = (performance.now() - started) / 1000;
  out(
    `${results.length} images, ${failed} failed, ${seconds.toFixed(1)} s; results written to ${file}${outputDir && task !== 'image_classification' ? `; visualizations in ${join(outputDir, 'visualizations')}` : ''}`,
  );
  return exitCode;
}
