// `npm run demo`: start the stack on embedded defaults, generate a model and a labeled dataset,
// run a test run and an inference job through the REST API, show progress, print the results.
import { join } from 'node:path';
import cliProgress from 'cli-progress';
import { isTerminal, type JobStatus } from '../contract/index.ts';
import { writeSamples } from '../samples/write-samples.ts';
import { ApiClient } from './api-client.ts';
import { imagesDone } from './job-commands.ts';
import { StackStartInterrupted, startStack, type Stack } from './stack.ts';
import { exitCodeOf } from './stop-signals.ts';

type Job = Record<string, unknown> & { id: string; status: string; processed_images: number; total_images: number | null };

async function follow(api: ApiClient, path: string, label: string, print: (s: string) => void, signal?: AbortSignal): Promise<Job> {
  const bar = new cliProgress.SingleBar(
    { format: `${label.padEnd(14)} [{bar}] {percentage}% | {images} images | {status}`, hideCursor: true, noTTYOutput: true, notTTYSchedule: 1000 },
    cliProgress.Presets.shades_classic,
  );
  // Until the runner has listed the images their number is unknown: `0/?`, as `kinfer list` says it.
  bar.start(1, 0, { status: 'pending', images: imagesDone(0, null) });
  for (;;) {
    if (signal?.aborted) {
      bar.stop();
      signal.throwIfAborted();
    }
    const job = await api.call<Job>('GET', path);
    bar.setTotal(job.total_images ?? 1);
    bar.update(job.processed_images, { status: job.status, images: imagesDone(job.processed_images, job.total_images) });
    if (isTerminal(job.status as JobStatus)) {
      bar.stop();
      if (job.status !== 'completed') print(`${label} ${job.status}: ${String(job.error_message)}`);
      return job;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

const pct = (v: unknown) => (typeof v === 'number' ? `${(v * 100).toFixed(2)}%` : 'n/a');

/**
 * The demo's exit code: 0 when both jobs completed, 1 when one did not, 128 + the signal's number
 * when `signal` was aborted with a signal's name (Ctrl-C: 130), the stack stopped first.
 */
export async function runDemo(
  opts: { home: string; apiPort: number; callbackPort: number; pgPort: number; signal?: AbortSignal },
  print: (s: string) => void,
): Promise<number> {
  const interrupted = () => exitCodeOf(opts.signal!.reason as NodeJS.Signals);
  print(`Starting kinfer on embedded defaults (KINFER_HOME=${opts.home}) ...`);
  let stack: Stack;
  try {
    stack = await startStack({ ...opts, env: process.env, serviceLogs: 'files' });
  } catch (err) {
    if (!(err instanceof StackStartInterrupted)) throw err;
    print('Interrupted during start-up; stopped what had started.');
    return interrupted();
  }
  let api: ApiClient | undefined;
  /** The job being followed: cancelled on Ctrl-C, since its runner would outlive the stack. */
  let following: { path: string; label: string } | undefined;
  try {
    print(
      [
        `  dashboard ${stack.apiUrl.replace(/\/api\/v1$/, '')}/#token=${stack.adminToken}`,
        `  API      ${stack.apiUrl}`,
        `  predict  ${stack.predictorUrl}/predict`,
        `  callback ${stack.callbackUrl}`,
        `  storage  ${stack.artifactsUri}`,
        `  logs     ${join(stack.home, 'logs')}`,
        `  token    ${join(stack.home, 'admin-token')} (the admin API token; the CLI on this machine uses it)`,
      ].join('\n'),
    );
    const samples = await writeSamples(join(stack.home, 'samples'));
    print(
      `Generated a colour classifier (${samples.checkpoint}) and an ImageFolder dataset (${samples.datasetRoot}),\nwith 2 deliberately mislabeled images and 1 corrupt file.\n`,
    );
    api = new ApiClient(stack.apiUrl, stack.adminToken);

    const run = await api.call<Job>('POST', '/test-runs', {
      name: 'demo test run',
      checkpoint_path: samples.checkpoint,
      dataset_path: samples.datasetRoot,
      dataset_split: 'test',
      task_type: 'image_classification',
    });
    print(`POST /test-runs -> ${run.id}`);
    following = { path: `/test-runs/${run.id}`, label: 'test run' };
    const finished = await follow(api, following.path, following.label, print, opts.signal);
    if (finished.status === 'completed') {
      const m = finished.overall_metrics as Record<string, number>;
      print(`\nMetrics (${finished.processed_images} images, ${String(finished.failed_images)} unreadable):`);
      print(`  accuracy ${pct(m.accuracy)}   top-5 ${pct(m.top5_accuracy)}   macro precision ${pct(m.precision)}   recall ${pct(m.recall)}   F1 ${pct(m.f1)}`);
      print('  per class:');
      for (const c of finished.per_class_metrics as Array<Record<string, number | string>>) {
        print(`    ${String(c.class_name).padEnd(8)} precision ${pct(c.precision)}  recall ${pct(c.recall)}  f1 ${pct(c.f1)}  support ${c.support}`);
      }
      const names = finished.class_names as string[];
      print(`  confusion matrix (rows = true, columns = predicted):\n    ${''.padEnd(8)} ${names.map((n) => n.slice(0, 7).padStart(7)).join(' ')}`);
      (finished.confusion_matrix as number[][]).forEach((row, i) => print(`    ${names[i]!.padEnd(8)} ${row.map((v) => String(v).padStart(7)).join(' ')}`));
      const wrong = await api.call<{ images: Array<Record<string, unknown>> }>('GET', `/test-runs/${run.id}/images?filter_correct=false`);
      for (const img of wrong.images)
        print(`  misclassified: ${String(img.image_path)} (true ${String(img.true_label)}, predicted ${String(img.predicted_label)})`);
      print(`  results: ${String(finished.results_path)}\n`);
    }

    const job = await api.call<Job>('POST', '/inference-jobs', {
      name: 'demo inference',
      checkpoint_path: samples.checkpoint,
      task_type: 'image_classification',
      inference_type: 'batch',
      input_config: { image_paths: samples.images },
    });
    print(`POST /inference-jobs -> ${job.id}`);
    following = { path: `/inference-jobs/${job.id}`, label: 'inference job' };
    const inferred = await follow(api, following.path, following.label, print, opts.signal);
    if (inferred.status === 'completed') {
      const results = await api.call<{ results: Array<Record<string, unknown>> }>('GET', `/inference-jobs/${job.id}/results`);
      for (const r of results.results) print(`  ${String(r.image_path).split('/').pop()}: ${String(r.predicted_label)} (${pct(r.confidence)})`);
      print(`  results: ${String(inferred.results_path)}`);
    }
    return finished.status === 'completed' && inferred.status === 'completed' ? 0 : 1;
  } catch (err) {
    if (!opts.signal?.aborted) throw err;
    // A runner outlives the stack (it waits for the callback service to come back): the demo's
    // job is cancelled first, which stops its runner, unless it had already ended (409).
    const cancelled = following && api ? await api.call<Job>('POST', `${following.path}/cancel`).catch(() => undefined) : undefined;
    print(cancelled ? `\nInterrupted: the ${following!.label} is cancelled.` : '\nInterrupted.');
    return interrupted();
  } finally {
    await stack.stop();
    print('\nStopped.');
  }
}
