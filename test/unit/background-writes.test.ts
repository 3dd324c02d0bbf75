// Background writes: how many run at once, how many the loop lets queue, how many bodies are
// made at once, and a failed write counted and logged while the others go on.
import { BackgroundWrites } from '../../src/runner/io/background-writes.ts';
import { capturedLog } from '../support/captured-log.ts';

/** A write that runs until released; counts how many run at once. */
function gatedWrites() {
  let running = 0;
  let most = 0;
  const releases: Array<() => void> = [];
  const write = () =>
    new Promise<void>((resolve) => {
      running++;
      most = Math.max(most, running);
      releases.push(() => {
        running--;
        resolve();
      });
    });
  return { write, releaseAll: () => releases.splice(0).forEach((r) => r()), most: () => most, started: () => releases.length };
}

const settled = () => new Promise((r) => setImmediate(r));

describe('BackgroundWrites', () => {
  it('runs eight writes at once by default and lets the loop go on until more than eight are pending', async () => {
    const writes = new BackgroundWrites(capturedLog().log);
    const gate = gatedWrites();
    for (let i = 0; i < 8; i++) await writes.add(`w${i}`, gate.write);
    // The ninth is taken, and its add() waits: nine pending.
    let ninthReturned = false;
    const ninth = writes.add('w8', gate.write).then(() => (ninthReturned = true));
    await settled();
    expect({ started: gate.started(), ninthReturned }).toEqual({ started: 8, ninthReturned: false });
    gate.releaseAll();
    await ninth;
    await settled();
    gate.releaseAll();
    await writes.flush();
    expect({ most: gate.most(), failed: writes.failed }).toEqual({ most: 8, failed: 0 });
  });

  it('makes at most two bodies at once across writes', async () => {
    const writes = new BackgroundWrites(capturedLog().log, { maxQueued: 16 });
    const making = gatedWrites();
    const written: string[] = [];
    for (let i = 0; i < 6; i++) await writes.add(`w${i}`, async () => void written.push(await writes.prepare(async () => (await making.write(), `body ${i}`))));
    await settled();
    expect(making.started()).toBe(2);
    while (written.length < 6) {
      making.releaseAll();
      await settled();
    }
    await writes.flush();
    expect({ most: making.most(), written: written.sort() }).toEqual({ most: 2, written: [0, 1, 2, 3, 4, 5].map((i) => `body ${i}`) });
  });

  it('counts and logs a failed write, and the others still land', async () => {
    const { log, lines } = capturedLog();
    const writes = new BackgroundWrites(log);
    const landed: string[] = [];
    await writes.add('a.jpg', async () => void landed.push('a.jpg'));
    await writes.add('b.jpg', () => Promise.reject(new Error('bucket gone')));
    await writes.add('c.jpg', async () => void landed.push('c.jpg'));
    await writes.flush();
    expect({ failed: writes.failed, landed }).toEqual({ failed: 1, landed: ['a.jpg', 'c.jpg'] });
    expect(lines.map((l) => [l.artifact, (l.err as { message?: string })?.message, l.msg])).toEqual([['b.jpg', 'bucket gone', 'could not write an artifact']]);
  });
});
