// Node's module compile cache: bin/with-node turns it on for every kinfer process, and the
// subprocess tier hands it to the runners it starts (a runner's start-up CPU about halves).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { RunnerExit } from '../../src/controller/subprocess/executor.ts';
import { SubprocessExecutor } from '../../src/controller/subprocess/subprocess-executor.ts';
import { eventually } from '../support/local-cluster.ts';

/** A script that prints what Node says about its compile cache: the variable, and where it is on. */
const CACHE_DIR =
  "process.stdout.write(JSON.stringify({ env: process.env.NODE_COMPILE_CACHE ?? null, dir: require('node:module').getCompileCacheDir() ?? null }))";

const withNode = (env: NodeJS.ProcessEnv) =>
  JSON.parse(execFileSync(resolve('bin/with-node'), ['-e', CACHE_DIR], { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env } }).toString());

describe('compile cache', () => {
  it("bin/with-node turns it on in this checkout's node_modules/.cache, unless told another place or off", () => {
    const mine = withNode({});
    expect(mine.env).toBe(join(resolve('node_modules'), '.cache', 'node-compile-cache'));
    // Node enabled it there: a subfolder for this Node version and its flags.
    expect(mine.dir.startsWith(`${mine.env}/v${process.versions.node}-`)).toBe(true);

    const elsewhere = join(mkdtempSync(join(process.env.KINFER_TEST_DIR!, 'compile-cache-')), 'cache');
    expect(withNode({ NODE_COMPILE_CACHE: elsewhere }).dir.startsWith(`${elsewhere}/`)).toBe(true);
    expect(withNode({ NODE_DISABLE_COMPILE_CACHE: '1' }).dir).toBeNull();
  });

  it('reaches a runner that the subprocess tier starts', async () => {
    const logDir = mkdtempSync(join(process.env.KINFER_TEST_DIR!, 'compile-cache-runner-'));
    const cache = join(logDir, 'cache');
    const before = process.env.NODE_COMPILE_CACHE;
    process.env.NODE_COMPILE_CACHE = cache;
    const executor = new SubprocessExecutor({ command: [process.execPath, '-e', CACHE_DIR], logDir, stopGraceMs: 1000 });
    let exit: RunnerExit | undefined;
    executor.onExit((e) => (exit = e));
    try {
      await executor.start('inference_job', 'cc-job', {});
      // A runner that never exits fails the case here, not at Jest's timeout.
      expect(await eventually('the runner to exit', async () => exit, 20_000)).toMatchObject({ code: 0 });
    } finally {
      // Nor does it outlive the suite (Jest would wait for it).
      if (exit === undefined) await executor.stop('cc-job', null, { force: true });
      if (before === undefined) delete process.env.NODE_COMPILE_CACHE;
      else process.env.NODE_COMPILE_CACHE = before;
    }
    const seen = JSON.parse(readFileSync(join(logDir, 'cc-job.log'), 'utf8'));
    expect(seen.env).toBe(cache);
    expect(seen.dir.startsWith(`${cache}/`)).toBe(true);
  });
});
