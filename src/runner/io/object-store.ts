// The runner's view of object storage: read models and images, list datasets, write artifacts.
// s3:// goes through the AWS SDK (path-style when S3_ENDPOINT is set), loaded on the first s3:// URI
// (s3-objects.ts); file:// is a local directory.
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { formatStorageUri, parseStorageUri, type S3ClientSettings } from '../../contract/index.ts';
import { ObjectNotFoundError } from './object-not-found.ts';
import type { ObjectWriter } from './object-writer.ts';
import type { S3Objects } from './s3-objects.ts';

export { ObjectNotFoundError } from './object-not-found.ts';
export type { ObjectWriter } from './object-writer.ts';
export type S3Settings = S3ClientSettings;

export class ObjectStore {
  readonly #settings: S3Settings;
  /** The s3:// half, once a job has touched an s3:// URI. */
  #s3: Promise<S3Objects> | undefined;

  constructor(settings: S3Settings) {
    this.#settings = settings;
  }

  #objects(): Promise<S3Objects> {
    return (this.#s3 ??= import('./s3-objects.ts').then(({ S3Objects }) => new S3Objects(this.#settings)));
  }

  async read(uri: string): Promise<Buffer> {
    const loc = parseStorageUri(uri);
    if (loc.scheme === 'file') {
      try {
        return await readFile(loc.path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ObjectNotFoundError(uri);
        throw err;
      }
    }
    return (await this.#objects()).read(loc, uri);
  }

  /**
   * Every object under a prefix, recursively, in lexicographic order of the full URI (S3's own
   * order; local directories are sorted the same way). Pages are fetched as the caller consumes.
   */
  async *list(prefixUri: string): AsyncGenerator<string> {
    const loc = parseStorageUri(prefixUri);
    if (loc.scheme === 'file') {
      yield* walkSorted(loc.path.replace(/\/+$/, ''));
      return;
    }
    yield* (await this.#objects()).list(loc);
  }

  async write(uri: string, body: Buffer | string, contentType = 'application/octet-stream'): Promise<void> {
    const loc = parseStorageUri(uri);
    if (loc.scheme === 'file') {
      await mkdir(dirname(loc.path), { recursive: true });
      // Whole or not at all, as an S3 PUT: a runner killed mid-write leaves no truncated file.
      const temporary = join(dirname(loc.path), `.${randomBytes(6).toString('hex')}.partial`);
      await writeFile(temporary, body);
      await rename(temporary, loc.path);
      return;
    }
    await (await this.#objects()).write(loc, body, contentType);
  }

  /** Deletes an object; one already gone is not an error. */
  async remove(uri: string): Promise<void> {
    const loc = parseStorageUri(uri);
    if (loc.scheme === 'file') {
      await rm(loc.path, { force: true });
      return;
    }
    await (await this.#objects()).remove(loc);
  }

  /** Streams an object of unknown length (multipart upload on S3), so large artifacts never sit in memory. */
  async openWriter(uri: string, contentType = 'application/octet-stream'): Promise<ObjectWriter> {
    const loc = parseStorageUri(uri);
    if (loc.scheme === 'file') {
      await mkdir(dirname(loc.path), { recursive: true });
      const stream = new PassThrough();
      return { stream, done: pipeline(stream, createWriteStream(loc.path)) };
    }
    return (await this.#objects()).openWriter(loc, contentType);
  }
}

async function* walkSorted(dir: string): AsyncGenerator<string> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    if ((err as NodeJS.ErrnoException).code === 'ENOTDIR' && (await stat(dir)).isFile()) return;
    throw err;
  }
  // Sort by the name as it appears inside a full path ("a/" sorts after "a.b"), matching S3 key order.
  const keyed = entries.map((e) => ({ e, key: e.isDirectory() ? `${e.name}/` : e.name }));
  keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  for (const { e } of keyed) {
    const full = join(dir, e.name);
    if (e.isDirectory()) yield* walkSorted(full);
    else if (e.isFile()) yield formatStorageUri({ scheme: 'file', path: full });
  }
}
