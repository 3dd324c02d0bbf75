// A real pino logger whose lines are kept, parsed, for a test to read.
import { Writable } from 'node:stream';
import pino from 'pino';

export function capturedLog(level: pino.LevelWithSilent = 'info') {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  return { log: pino({ level }, stream), lines };
}
