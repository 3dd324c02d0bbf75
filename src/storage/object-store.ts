// The services' and CLI's view of object storage: does a model or dataset exist, read an
// artifact, write sample data.
// (The runner has its own client: it shares only src/contract with the services.)
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { parseStorageUri } from '../contract/index.ts';

export interface StorageSettings {
  endpoint?: string | undefined;
  region: string;
  accessKeyId?: string | undefined;
  secretAccessKey?: string | undefined;
}

export class StorageClient {
  readonly #settings: StorageSettings;
  #s3: S3Client | undefined;

  constructor(settings: StorageSettings) {
    this.#settings = settings;
  }

  #client(): S3Client {
    const s = this.#settings;
    this.#s3 ??= new S3Client({
      region: s.region,
      ...(s.endpoint ? { endpoint: s.endpoint, forcePathStyle: true } : {}),
      ...(s.accessKeyId && s.secretAccessKey ? { credentials: { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey } } : {}),
    });
    return this.#s3;
  }

  /** True when an object (not a folder) exists at the URI. */
  async objectExists(uri: string): Promise<boolean> {
    const loc = parseStorageUri(uri);
    if (loc.scheme === 'file') return stat(loc.path).then((s) => s.isFile(), () => false);
    try {
      await this.#client().send(new HeadObjectCommand({ Bucket: loc.bucket, Key: loc.key }));
      return true;
    } catch (err) {
      const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status === 404 || (err as { name?: string }).name === 'NotFound') return false;
      throw err;
    }
  }

  /** True when at least one object lies under the prefix (a local directory counts if it exists). */
  async prefixExists(uri: string): Promise<boolean> {
    const loc = parseStorageUri(uri);
    if (loc.scheme === 'file') return stat(loc.path).then((s) => s.isDirectory(), () => false);
    const prefix = loc.key === '' || loc.key.endsWith('/') ? loc.key : `${loc.key}/`;
    const page = await this.#client().send(new ListObjectsV2Command({ Bucket: loc.bucket, Prefix: prefix, MaxKeys: 1 }));
    return (page.KeyCount ?? 0) > 0;
  }

  async read(uri: string): Promise<Buffer> {
    const loc = parseStorageUri(uri);
    if (loc.scheme === 'file') return readFile(loc.path);
    const res = await this.#client().send(new GetObjectCommand({ Bucket: loc.bucket, Key: loc.key }));
    return Buffer.from(await res.Body!.transformToByteArray());
  }

  async write(uri: string, body: Uint8Array): Promise<void> {
    const loc = parseStorageUri(uri);
    if (loc.scheme === 'file') {
      await mkdir(dirname(loc.path), { recursive: true });
      await writeFile(loc.path, body);
      return;
    }
    await this.#client().send(new PutObjectCommand({ Bucket: loc.bucket, Key: loc.key, Body: body }));
  }
}
