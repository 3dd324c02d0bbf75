// The runner's view of object storage: read models and images, list datasets, write artifacts.
// s3:// goes through the AWS SDK (path-style when S3_ENDPOINT is set); file:// is a local directory.
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { PassThrough, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { formatStorageUri, parseStorageUri, S3ClientPool, type S3ClientSettings } from '../../contract/index.ts';

export type S3Settings = S3ClientSettings;

export class ObjectNotFoundError extends Error {
  readonly code = 'OBJECT_NOT_FOUND';
  readonly uri: string;
  constructor(uri: string) {
    super(`not found: ${uri}`);
    this.uri = uri;
    this.name = 'ObjectNotFoundError';
  }
}

/** A stream being written; `done` settles once the object is durable (or the write failed). */
export interface ObjectWriter {
  stream: Writable;
  done: Promise<void>;
}

export class ObjectStore {
  /** One client per bucket with its own credentials, and one for the rest. */
  readonly #s3: S3ClientPool;

  constructor(settings: S3Settings) {
    this.#s3 = new S3ClientPool(settings);
  }

  #client(bucket: string): S3Client {
    return this.#s3.client(bucket);
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
    try {
      const res = await this.#client(loc.bucket).send(new GetObjectCommand({ Bucket: loc.bucket, Key: loc.key }));
      if (!res.Body) throw new ObjectNotFoundError(uri);
      return Buffer.from(await res.Body.transformToByteArray());
    } catch (err) {
      if ((err as { name?: string }).name === 'NoSuchKey') throw new ObjectNotFoundError(uri);
      throw err;
    }
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
    const prefix = loc.key === '' || loc.key.endsWith('/') ? loc.key : `${loc.key}/`;
    let token: string | undefined;
    do {
      const page = await this.#client(loc.bucket).send(new ListObjectsV2Command({ Bucket: loc.bucket, Prefix: prefix, ContinuationToken: token }));
      for (const obj of page.Contents ?? []) {
        if (obj.Key && !obj.Key.endsWith('/')) yield formatStorageUri({ scheme: 's3', bucket: loc.bucket, key: obj.Key });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
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
    await this.#client(loc.bucket).send(new PutObjectCommand({ Bucket: loc.bucket, Key: loc.key, Body: body, ContentType: contentType }));
  }

  /** Deletes an object; one already gone is not an error. */
  async remove(uri: string): Promise<void> {
    const loc = parseStorageUri(uri);
    if (loc.scheme === 'file') {
      await rm(loc.path, { force: true });
      return;
    }
    await this.#client(loc.bucket).send(new DeleteObjectCommand({ Bucket: loc.bucket, Key: loc.key }));
  }

  /** Streams an object of unknown length (multipart upload on S3), so large artifacts never sit in memory. */
  async openWriter(uri: string, contentType = 'application/octet-stream'): Promise<ObjectWriter> {
    const loc = parseStorageUri(uri);
    if (loc.scheme === 'file') {
      await mkdir(dirname(loc.path), { recursive: true });
      const stream = new PassThrough();
      return { stream, done: pipeline(stream, createWriteStream(loc.path)) };
    }
    const stream = new PassThrough();
    const upload = new Upload({
      client: this.#client(loc.bucket),
      params: { Bucket: loc.bucket, Key: loc.key, Body: stream, ContentType: contentType },
    });
    return { stream, done: upload.done().then(() => undefined) };
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
