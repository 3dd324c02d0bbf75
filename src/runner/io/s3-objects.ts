// The runner's s3:// half of ObjectStore, loaded on the first s3:// URI a job touches, so that a job
// on local files (the subprocess tier's folders, the benchmarks) does without the AWS SDK: 13 MiB
// of resident memory in a process holding the runner's other packages (112 against 99 MiB), 6 MiB
// of a detection runner's peak (ten interleaved pairs of 16-image runs: a median of 326.5 against
// 332 MiB). `npm run lint:deps` keeps the rest of the runner from importing it statically.
import { PassThrough } from 'node:stream';
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { formatStorageUri, type S3ClientSettings, type StorageLocation } from '../../contract/index.ts';
import { S3ClientPool } from '../../contract/s3-client-pool.ts';
import { ObjectNotFoundError } from './object-not-found.ts';
import type { ObjectWriter } from './object-writer.ts';

/** An object's place in a bucket: the contract's s3:// location. */
type S3Location = Extract<StorageLocation, { scheme: 's3' }>;

export class S3Objects {
  /** One client per bucket with its own credentials, and one for the rest. */
  readonly #clients: S3ClientPool;

  constructor(settings: S3ClientSettings) {
    this.#clients = new S3ClientPool(settings);
  }

  async read(loc: S3Location, uri: string): Promise<Buffer> {
    try {
      const res = await this.#clients.client(loc.bucket).send(new GetObjectCommand({ Bucket: loc.bucket, Key: loc.key }));
      if (!res.Body) throw new ObjectNotFoundError(uri);
      return Buffer.from(await res.Body.transformToByteArray());
    } catch (err) {
      if ((err as { name?: string }).name === 'NoSuchKey') throw new ObjectNotFoundError(uri);
      throw err;
    }
  }

  /** Every object under the prefix, in S3's (lexicographic) order, a page at a time as the caller consumes. */
  async *list(loc: S3Location): AsyncGenerator<string> {
    const prefix = loc.key === '' || loc.key.endsWith('/') ? loc.key : `${loc.key}/`;
    let token: string | undefined;
    do {
      const page = await this.#clients.client(loc.bucket).send(new ListObjectsV2Command({ Bucket: loc.bucket, Prefix: prefix, ContinuationToken: token }));
      for (const obj of page.Contents ?? []) {
        if (obj.Key && !obj.Key.endsWith('/')) yield formatStorageUri({ scheme: 's3', bucket: loc.bucket, key: obj.Key });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async write(loc: S3Location, body: Buffer | string, contentType: string): Promise<void> {
    await this.#clients.client(loc.bucket).send(new PutObjectCommand({ Bucket: loc.bucket, Key: loc.key, Body: body, ContentType: contentType }));
  }

  async remove(loc: S3Location): Promise<void> {
    await this.#clients.client(loc.bucket).send(new DeleteObjectCommand({ Bucket: loc.bucket, Key: loc.key }));
  }

  /** A multipart upload of unknown length. */
  openWriter(loc: S3Location, contentType: string): ObjectWriter {
    const stream = new PassThrough();
    const upload = new Upload({
      client: this.#clients.client(loc.bucket),
      params: { Bucket: loc.bucket, Key: loc.key, Body: stream, ContentType: contentType },
    });
    return { stream, done: upload.done().then(() => undefined) };
  }
}
