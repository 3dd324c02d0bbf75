// A service that throws where nothing catches: it exits 1 (as Node would) but first writes a fatal
// line with the error to its own log, and the supervisor's summary of its last words (what
// `kinfer serve` prints when it restarts a service) names the error, whether the crash was reported
// by the service's guard (JSON on stdout) or by Node itself (text on stderr). Real child processes.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { LastWords } from '../../src/cli/last-words.ts';

const plumbing = fileURLToPath(new URL('../../src/http/plumbing.ts', import.meta.url));
const logger = fileURLToPath(new URL('../../src/http/logger.ts', import.meta.url));

/** Runs `body` as an ES module in a new Node process; its exit code, output and last words. */
async function service(body: string): Promise<{ code: number | null; stdout: string; words: string }> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', body], { stdio: ['ignore', 'pipe', 'pipe'] });
  const words = new LastWords();
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    words.stdout(chunk);
  });
  child.stderr.on('data', (chunk: Buffer) => words.stderr(chunk));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  return { code, stdout, words: words.summary() };
}

const guarded = (crash: string) => `
const { guardProcess } = await import(${JSON.stringify(plumbing)});
const { serviceLogger } = await import(${JSON.stringify(logger)});
const log = serviceLogger('svc');
guardProcess(log);
log.info('listening');
${crash}
`;

describe('a service that crashes', () => {
  it('logs an uncaught throw as fatal with its error, exits 1, and the supervisor quotes it', async () => {
    const { code, stdout, words } = await service(guarded(`setTimeout(() => { throw new TypeError('boom in a timer'); }, 10);`));
    expect(code).toBe(1);
    const fatal = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { level: number; msg: string; err?: { type: string; stack: string } })
      .find((l) => l.level === 60);
    expect(fatal?.msg).toBe('uncaught exception, exiting: boom in a timer');
    expect(fatal?.err?.type).toBe('TypeError');
    expect(fatal?.err?.stack).toMatch(/^TypeError: boom in a timer\n\s+at /);
    expect(words).toMatch(/^last error: uncaught exception, exiting: boom in a timer: TypeError: boom in a timer \| at /);
  });

  it('keeps running after a rejection nobody handled, and logs it as an error', async () => {
    const { code, stdout, words } = await service(
      guarded(`Promise.reject(new Error('a dependency blinked')); setTimeout(() => { log.info('still here'); process.exit(0); }, 50);`),
    );
    expect(code).toBe(0);
    expect(stdout).toContain('"msg":"still here"');
    expect(stdout).toMatch(/"level":50,.*"msg":"unhandled rejection \(kept running\)"/);
    expect(words).toMatch(/^last error: unhandled rejection \(kept running\): Error: a dependency blinked \| at /);
  });

  it("quotes Node's own report on stderr when the process has no guard", async () => {
    const { code, words } = await service(`setTimeout(() => { throw new RangeError('unguarded'); }, 10);`);
    expect(code).toBe(1);
    expect(words).toMatch(/^stderr: .*RangeError: unguarded/);
  });

  it('prefers the fatal line to a warning printed on stderr before it', async () => {
    const { code, words } = await service(
      guarded(`process.emitWarning('something is deprecated', 'DeprecationWarning'); setTimeout(() => { throw new Error('the real cause'); }, 10);`),
    );
    expect(code).toBe(1);
    expect(words).toMatch(/^last error: uncaught exception, exiting: the real cause: Error: the real cause \| at /);
  });

  it('says nothing when the service printed no error', async () => {
    const { code, stdout, words } = await service(guarded(`log.warn('a warning, not an error'); process.exit(3);`));
    expect(code).toBe(3);
    expect(stdout).toContain('"msg":"a warning, not an error"');
    expect(words).toBe('');
  });
});
