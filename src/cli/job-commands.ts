// The CLI as a client of a running server (KINFER_API_URL, default the local one), kubectl-style:
//   kinfer test-run create|get|list|cancel|delete, kinfer inference create|get|list|cancel|delete,
//   kinfer watch <id> (a progress bar fed by server-sent events, ending with the metrics),
//   kinfer open <id> (the dashboard's URL). `--output json` on every read verb.
import cliProgress from 'cli-progress';
import { type Command, InvalidArgumentError } from 'commander';
import { inDisplayOrder, isImageCount, takeServerSentEvents } from '../contract/index.ts';
import { ApiClient, ApiError } from './api-client.ts';

export interface JobCommandContext {
  apiUrl: string;
  token: () => string | undefined;
  print: (line: string) => void;
}

type Output = 'table' | 'json';
const KINDS = {
  'test-run': { segment: 'test-runs', what: 'test run', aWhat: 'a test run' },
  inference: { segment: 'inference-jobs', what: 'inference job', aWhat: 'an inference job' },
} as const;

const outputOption = (value: string): Output => {
  if (value !== 'json' && value !== 'table') throw new InvalidArgumentError('--output is json or table');
  return value;
};
const positive = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive integer`);
  return n;
};

interface JobView {
  id: string;
  name: string | null;
  status: string;
  task_type: string;
  progress_percent: number;
  processed_images: number;
  total_images: number | null;
  /** Images that could not be read (each has its error entry in the results); counted in processed_images. */
  failed_images?: number;
  primary_metric_name?: string | null;
  primary_metric_value?: number | null;
  error_message: string | null;
  created_at: string;
  overall_metrics?: Record<string, unknown> | null;
}

/** Images done of all, `?` for all until the runner has listed them. */
export const imagesDone = (processed: number, total: number | null | undefined): string => `${processed}/${total ?? '?'}`;

const metricOf = (j: JobView) =>
  j.primary_metric_name && typeof j.primary_metric_value === 'number' ? `${j.primary_metric_name}=${j.primary_metric_value.toFixed(4)}` : '-';

function table(print: (line: string) => void, jobs: JobView[]): void {
  print(`${'ID'.padEnd(36)}  ${'STATUS'.padEnd(9)}  ${'TASK'.padEnd(21)}  ${'PROGRESS'.padEnd(11)}  ${'METRIC'.padEnd(24)}  NAME`);
  for (const j of jobs)
    print(
      `${j.id}  ${j.status.padEnd(9)}  ${j.task_type.padEnd(21)}  ${imagesDone(j.processed_images, j.total_images).padEnd(11)}  ${metricOf(j).padEnd(24)}  ${j.name ?? ''}`,
    );
}

function describe(print: (line: string) => void, j: JobView): void {
  // Unreadable images said beside the count, as the dashboard says them: a completed job may have some.
  const unreadable = j.failed_images ? ` (${j.failed_images} could not be read)` : '';
  print(
    `${j.id}  ${j.status}  ${j.task_type}  ${imagesDone(j.processed_images, j.total_images)} images${unreadable}  ${metricOf(j)}${j.name ? `  ${j.name}` : ''}`,
  );
  if (j.error_message) print(`error: ${j.error_message}`);
  // Counts (evaluated_images, xai/explained_images) as the integers they are, scores to 4 places.
  for (const [k, v] of inDisplayOrder(Object.entries(j.overall_metrics ?? {}), j.primary_metric_name))
    if (typeof v === 'number') print(`  ${k.padEnd(28)} ${isImageCount(k, v) ? v : v.toFixed(4)}`);
}

/** Which kind a job id is (the CLI takes a bare id for watch and open). */
async function kindOf(client: ApiClient, id: string): Promise<{ segment: string; job: JobView }> {
  for (const segment of ['test-runs', 'inference-jobs']) {
    try {
      return { segment, job: await client.call<JobView>('GET', `/${segment}/${encodeURIComponent(id)}`) };
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 404) throw err;
    }
  }
  throw new ApiError(404, { message: `no test run or inference job ${id}` });
}

/** How long `watch` keeps trying to reach the job's event stream again before it gives up (ms; 60 s unless set). */
const RECONNECT_FOR_MS = ((ms) => (Number.isFinite(ms) && ms >= 0 ? ms : 60_000))(Number(process.env.KINFER_WATCH_RECONNECT_MS ?? 60_000));

/**
 * One connection to a job's server-sent events: `done`'s job, or undefined when the stream ended
 * before it. An answer of 4xx is thrown as ApiError (the job is gone, or not yours), and so is 5xx.
 */
async function followOnce(
  ctx: JobCommandContext,
  segment: string,
  id: string,
  onEvent: (event: string, data: Record<string, unknown>) => void,
): Promise<JobView | undefined> {
  const res = await new ApiClient(ctx.apiUrl, ctx.token()).open(`/${segment}/${encodeURIComponent(id)}/events`, { accept: 'text/event-stream' });
  let buffer = '';
  for await (const chunk of res.body) {
    const taken = takeServerSentEvents(buffer + (chunk as Buffer).toString('utf8'));
    buffer = taken.rest;
    for (const { event, data } of taken.events) {
      onEvent(event, data as Record<string, unknown>);
      if (event === 'done') return data as JobView;
    }
  }
  return undefined;
}

/**
 * Follows a job's server-sent events until `done`; the finished job. A stream that ends or breaks
 * before (a controller restarting in a rolling update, a proxy's timeout, the database away for a
 * moment) is opened again, as a browser's EventSource would: it starts with the job's status.
 * Gives up after RECONNECT_FOR_MS without a stream, and at once on a 4xx or when the first
 * connection fails (a wrong KINFER_API_URL is said at once, not after a minute).
 */
async function follow(ctx: JobCommandContext, segment: string, id: string, onEvent: (event: string, data: Record<string, unknown>) => void): Promise<JobView> {
  let lastStream: number | undefined;
  let delay = 500;
  for (;;) {
    let why: string;
    try {
      const done = await followOnce(ctx, segment, id, (event, data) => {
        lastStream = Date.now();
        delay = 500;
        onEvent(event, data);
      });
      if (done) return done;
      why = 'the event stream ended before the job did';
    } catch (err) {
      if (lastStream === undefined || (err instanceof ApiError && err.status < 500)) throw err;
      why = `the event stream broke (${(err as Error).message})`;
    }
    if (lastStream === undefined) throw new Error(`${why}; run kinfer watch ${id} again`);
    if (Date.now() - lastStream > RECONNECT_FOR_MS)
      throw new Error(`${why}, and no stream for ${Math.round(RECONNECT_FOR_MS / 1000)} s; run kinfer watch ${id} again`);
    process.stderr.write(`${why}; connecting again in ${delay / 1000} s\n`);
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 5_000);
  }
}

/** Watches a job to its end with a progress bar (on stderr); exit code 0 when it completed. */
async function watch(ctx: JobCommandContext, segment: string, id: string, output: Output): Promise<number> {
  const bar = process.stderr.isTTY
    ? new cliProgress.SingleBar({ format: ' {bar} {images} images | {status}', stream: process.stderr, hideCursor: true }, cliProgress.Presets.shades_classic)
    : undefined;
  let started = false;
  const update = (processed: number, total: number | null, status: string) => {
    if (!bar) {
      process.stderr.write(`${status} ${imagesDone(processed, total)}\n`);
      return;
    }
    const images = imagesDone(processed, total);
    if (!started) bar.start(total ?? 0, processed, { status, images });
    started = true;
    if (total !== null) bar.setTotal(total);
    bar.update(processed, { status, images });
  };
  let status = 'pending';
  const final = await follow(ctx, segment, id, (event, data) => {
    if (event === 'status') status = String(data.status);
    if (event === 'status' || event === 'progress') update(Number(data.processed_images ?? 0), (data.total_images as number | null) ?? null, status);
  });
  bar?.stop();
  if (output === 'json') ctx.print(JSON.stringify(final));
  else describe(ctx.print, final);
  return final.status === 'completed' ? 0 : 1;
}

export function addJobCommands(program: Command, ctx: JobCommandContext): void {
  const client = () => new ApiClient(ctx.apiUrl, ctx.token());

  for (const [verb, { segment, what, aWhat }] of Object.entries(KINDS)) {
    const group = program.command(verb).description(`${what}s on the server (KINFER_API_URL)`);
    const create = group
      .command('create')
      .description(`submit ${aWhat}`)
      .option('--checkpoint <uri>', 'ONNX model (s3://, file:// or an absolute path)')
      .option('--model <ref>', 'a registered model: name@version, name:stage or name')
      .requiredOption('--task <task>', 'image_classification | object_detection | instance_segmentation | pose_estimation | semantic_segmentation')
      .option('--name <name>', 'a name for it')
      .option('--xai <method>', 'explain the predictions with this method')
      .option('--watch', 'follow it to its end (progress bar, then the metrics)')
      .option('-o, --output <format>', 'table | json', outputOption, 'table' as Output);
    if (verb === 'test-run') create.requiredOption('--dataset <uri>', 'the labelled dataset').option('--split <name>', 'its split folder', 'test');
    else
      create
        .option('--image <uri>', 'one image')
        .option('--images <uris>', 'images, comma-separated')
        .option('--dataset <uri>', 'a folder or prefix of images');
    create.action(async (o: Record<string, string | boolean | undefined>) => {
      const common = {
        ...(o.checkpoint ? { checkpoint_path: o.checkpoint } : {}),
        ...(o.model ? { model: o.model } : {}),
        task_type: o.task,
        ...(o.name ? { name: o.name } : {}),
        ...(o.xai ? { enable_xai: true, xai_method: o.xai } : {}),
      };
      const inputs = verb === 'inference' ? (['image', 'images', 'dataset'] as const).filter((k) => o[k] !== undefined) : [];
      if (verb === 'inference' && inputs.length !== 1) throw new InvalidArgumentError('give exactly one of --image, --images, --dataset');
      const body =
        verb === 'test-run'
          ? { ...common, dataset_path: o.dataset, dataset_split: o.split }
          : {
              ...common,
              inference_type: { image: 'single', images: 'batch', dataset: 'dataset' }[inputs[0]!],
              input_config:
                inputs[0] === 'image'
                  ? { image_path: o.image }
                  : inputs[0] === 'images'
                    ? { image_paths: String(o.images).split(',') }
                    : { dataset_path: o.dataset },
            };
      const created = await client().call<JobView>('POST', `/${segment}`, body);
      if (o.output === 'json' && !o.watch) ctx.print(JSON.stringify(created));
      else ctx.print(`${what} ${created.id} ${created.status}`);
      if (o.watch) process.exitCode = await watch(ctx, segment, created.id, o.output as Output);
    });

    group
      .command('get')
      .description(`one ${what}`)
      .argument('<id>')
      .option('-o, --output <format>', 'table | json', outputOption, 'table' as Output)
      .action(async (id: string, o: { output: Output }) => {
        const job = await client().call<JobView>('GET', `/${segment}/${encodeURIComponent(id)}`);
        if (o.output === 'json') ctx.print(JSON.stringify(job));
        else describe(ctx.print, job);
      });

    group
      .command('list')
      .description(`${what}s, newest first`)
      .option('--status <status>', 'pending | running | completed | failed | cancelled')
      .option('--limit <n>', 'at most this many', positive('--limit'), 50)
      .option('-o, --output <format>', 'table | json', outputOption, 'table' as Output)
      .action(async (o: { status?: string; limit: number; output: Output }) => {
        const q = new URLSearchParams({ limit: String(o.limit), ...(o.status ? { status: o.status } : {}) });
        const page = await client().call<{ total_count: number; items: JobView[] }>('GET', `/${segment}?${q}`);
        if (o.output === 'json') ctx.print(JSON.stringify(page));
        else table(ctx.print, page.items);
      });

    group
      .command('cancel')
      .description(`cancel a pending or running ${what}`)
      .argument('<id>')
      .action(async (id: string) => {
        const job = await client().call<JobView>('POST', `/${segment}/${encodeURIComponent(id)}/cancel`);
        ctx.print(`${what} ${job.id} ${job.status}`);
      });

    group
      .command('delete')
      .description(`delete a finished ${what}: its results and artifacts`)
      .argument('<id>')
      .action(async (id: string) => {
        await client().call('DELETE', `/${segment}/${encodeURIComponent(id)}`);
        ctx.print(`${what} ${id} deleted`);
      });
  }

  program
    .command('watch')
    .description('follow a job to its end: a progress bar, then its metrics (exit code 0 when it completed)')
    .argument('<id>', 'a test run or inference job id')
    .option('-o, --output <format>', 'table | json', outputOption, 'table' as Output)
    .action(async (id: string, o: { output: Output }) => {
      const { segment } = await kindOf(client(), id);
      process.exitCode = await watch(ctx, segment, id, o.output);
    });

  program
    .command('open')
    .description("print the job's page in the dashboard")
    .argument('<id>', 'a test run or inference job id')
    .action(async (id: string) => {
      const api = client();
      const { segment } = await kindOf(api, id);
      ctx.print(`${api.base.replace(/\/api\/v1$/, '')}/${segment}/${id}`);
    });
}
