// The S3 clients of one process. Apart from storage-credentials.ts and not exported from the
// contract's index, so that a runner whose job touches no s3:// URI never loads the AWS SDK
// (src/runner/io/s3-objects.ts says what that saves).
import { S3Client } from '@aws-sdk/client-s3';
import { type S3ClientSettings, s3SettingsFor } from './storage-credentials.ts';

/**
 * The S3 clients of one process (the runner's store, the services' storage client): one per
 * bucket with its own credentials, one ('') for the rest, each made on first use.
 */
export class S3ClientPool {
  readonly #settings: S3ClientSettings;
  readonly #clients = new Map<string, S3Client>();

  constructor(settings: S3ClientSettings) {
    this.#settings = settings;
  }

  client(bucket: string): S3Client {
    const key = this.#settings.buckets?.[bucket] ? bucket : '';
    let client = this.#clients.get(key);
    if (!client) {
      const s = s3SettingsFor(this.#settings, this.#settings.buckets ?? {}, bucket);
      client = new S3Client({
        region: s.region,
        ...(s.endpoint ? { endpoint: s.endpoint, forcePathStyle: true } : {}),
        ...(s.accessKeyId && s.secretAccessKey ? { credentials: { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey } } : {}),
      });
      this.#clients.set(key, client);
    }
    return client;
  }
}
