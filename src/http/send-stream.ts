// A response body sent from a stream of chunks (an artifact read from storage, an export read page
// by page), at the pace the client reads it.
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Response } from 'express';

/**
 * Sends `chunks` as the body and ends the response. A client that goes away mid-body closes the
 * source at once (its storage stream, its query pages): waiting for a `drain` instead would wait
 * forever, keeping an object storage connection per abandoned download. A source that fails
 * before its first chunk rejects with nothing sent (the caller's error answer); one that fails
 * later rejects too, and the client sees a cut response.
 */
export async function sendStream(res: Response, chunks: AsyncIterable<Uint8Array | string>): Promise<void> {
  const source = chunks[Symbol.asyncIterator]();
  const first = await source.next();
  async function* body() {
    try {
      for (let next = first; !next.done; next = await source.next()) yield next.value;
    } finally {
      // Also when the client went away: the source's own cleanup (its storage stream) runs now.
      await source.return?.();
    }
  }
  try {
    await pipeline(Readable.from(body(), { objectMode: false }), res);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE') return;
    throw err;
  }
}
