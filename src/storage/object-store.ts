// The services' and CLI's view of object storage: does a model or dataset exist, what is under a
// dataset split, stream a model's bytes, read an artifact, write sample data.
// (The runner has its own client: it shares only src/contract with the services.)
// Every call takes an optional AbortSignal: submit-time checks are bounded in time, and an
// endpoint that accepts and never answers must not hold a request forever.
import { createReadStream } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { DeleteObjectsCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { parseStorageUri, type S3ClientSettings } from '../contract/index.ts';
import { S3ClientPool } from '../contract/s3-client-pool.ts';

export type StorageSettings = S3ClientSettings;

/** What identifies one version of an object: its size and ETag (S3) or modification time (files). */
export interface ObjectVersion {
  size: number;
  version: string;
}

const notFound = (err: unknown) => {
  const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  const name = (err as { name?: string }).name;
  return status === 404 || name === 'NotFound' || name === 'NoSuchKey';
};

export class StorageClient {
  /** One client per bucket with its own credentials, and one for the rest. */
  readonly #s3: S3ClientPool;

  constructor(settings: StorageSettings) {
    this.#s3 = new S3ClientPool(settings);
  }

  #client(bucket: string): S3Client {
    return this.#s3.client(bucket);
  }

  /** The object's size and version, or null when there is no object (a folder is not one). */
  async stat(uri: string, signal?: AbortSignal): Promise<ObjectVersion | null> {
    const loc = parseStorageUri(uri);
    if (loc.scheme === 'file') {
      const s = await stat(loc.path).catch(() => null);
      return s?.isFile() ? { size: s.size, version: String(s.mtimeMs) } : null;
    }
    try {
      const head = await this.#client(loc.bucket).send(new HeadObjectCommand({ Bucket: loc.bucket, Key: loc.key }), { abortSignal: signal });
      return { size: head.ContentLength ?? 0, version: head.ETag ?? String(head.LastModified?.getTime() ?? '') };
    } catch (err) {
      if (notFound(err)) return null;
      throw err;
    }
  }

  /** True when an object (not a folder) exists at the URI. */
  async objectExists(uri: string, signal?: AbortSignal): Promise<boolean> {
    return (await this.stat(uri, signal)) !== null;
  }

  /** True when at least one object lies under the prefix (a local directory counts if it exists). */
  async prefixExists(uri: string, signal?: AbortSignal): Promise<boolean> {
    const loc = parseStorageUri(uri);
    if (loc.scheme === 'file')
      return stat(loc.path).then(
        (s) => s.isDirectory(),
        () => false,
      );
    const prefix = loc.key === '' || loc.key.endsWith('/') ? loc.key : `${loc.key}/`;
    const page = await this.#client(loc.bucket).send(new ListObjectsV2Command({ Bucket: loc.bucket, Prefix: prefix, MaxKeys: 1 }), { abortSignal: signal });
    return (page.KeyCount ?? 0) > 0;
  }

  /** The names of the folders directly under a prefix (S3 common prefixes; directories). */
  async listFolders(uri: string, signal?: AbortSignal): Promise<string[]> {
    const loc = parseStorageUri(uri);
    if (loc.scheme === 'file') {
      const entries = await readdir(loc.path, { withFileTypes: true }).catch(() => []);
      return entries.filter((e) => e.isDirectory()).map((e) => e.name);
    }
    const prefix = loc.key === '' || loc.key.endsWith('/') ? loc.key : `${loc.key}/`;
    const folders: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.#client(loc.bucket).send(
        new ListObjectsV2Command({ Bucket: loc.bucket, Prefix: prefix, Delimiter: '/', ContinuationToken: token }),
        {
          abortSignal: signal,
        },
      );
      for (const p of page.CommonPrefixes ?? []) if (p.Prefix) folders.push(p.Prefix.slice(prefix.length).replace(/\/$/, ''));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return folders;
  }

  /** The object's bytes as a stream of chunks (a model is read in constant memory). */
  async *stream(uri: string, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
    const loc = parseStorageUri(uri);
    if (loc.scheme === 'file') {
      const file = createReadStream(loc.path, { highWaterMark: 1 << 20, signal });
      try {
        for await (const chunk of file) yield chunk as Buffer;
      } finally {
        file.destroy();
      }
      return;
    }
    const res = await this.#client(loc.bucket).send(new GetObjectCommand({ Bucket: loc.bucket, Key: loc.key }), { abortSignal: signal });
    const body = res.Body as AsyncIterable<Uint8Array> & { destroy?: () => void };
    try {
      yield* body;
    } finally {
      body.destroy?.();
    }
  }

  async read(uri: string, signal?: AbortSignal): Promise<Buffer> {
    const loc = parseStorageUri(uri);
    if (loc.scheme === 'file') return readFile(loc.path, { signal });
    const res = await this.#client(loc.bucket).send(new GetObjectCommand({ Bucket: loc.bucket, Key: loc.key }), { abortSignal: signal });
    return Buffer.from(await res.Body!.transformToByteArray());
  }

  async write(uri: string, body: Uint8Array): Promise<void> {
    const loc = parseStorageUri(uri);
    if (loc.scheme === 'file') {
      await mkdir(dirname(loc.path), { recursive: true });
      await writeFile(loc.path, body);
      return;
    }
    await this.#client(loc.bucket).send(new PutObjectCommand({ Bucket: loc.bucket, Key: loc.key, Body: body }));
  }

  /** Deletes every object under a prefix (a directory, for file://); how many S3 objects went. */
  async deletePrefix(uri: string): Promise<number> {
    const loc = parseStorageUri(uri);
    if (loc.scheme === 'file') {
      await rm(loc.path, { recursive: true, force: true });
      return 0;
    }
    const prefix = loc.key === '' || loc.key.endsWith('/') ? loc.key : `${loc.key}/`;
    if (prefix === '') throw new Error(`refusing to delete a whole bucket: ${uri}`);
    const client = this.#client(loc.bucket);
    let deleted = 0;
    let token: string | undefined;
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket: loc.bucket, Prefix: prefix, ContinuationToken: token }));
      const keys = (page.Contents ?? []).flatMap((o) => (o.Key ? [{ Key: o.Key }] : []));
      if (keys.length > 0) {
        await client.send(new DeleteObjectsCommand({ Bucket: loc.bucket, Delete: { Objects: keys, Quiet: true } }));
        deleted += keys.length;
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return deleted;
  }
}
