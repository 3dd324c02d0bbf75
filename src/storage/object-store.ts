// The services' view of object storage: does a model or dataset exist, and read an artifact.
// (The runner has its own client: it shares only src/contract with the services.)
import { readFile, stat } from 'node:fs/promises';
import { HeadObjectCommand, ListObjectsV2Command, S3Client, GetObjectCommand } from '@aws-sdk/client-s3';
import { parseStorageUri } from '../contract/index.ts';

export interface StorageSettings {
  endpoint?: string | undefined;
  region: string;
  accessKeyId?: string | undefined;
  secretAccessKey?: string | undefined;
}

export class StorageReader {
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
}
