import type { Writable } from 'node:stream';

/** A stream being written; `done` settles once the object is durable (or the write failed). */
export interface ObjectWriter {
  stream: Writable;
  done: Promise<void>;
}
