// Predictions already made, by what determines them: the image's bytes (SHA-256), the model
// (name and version, or checkpoint and task) and the parameters. In-process (least recently used
// first out) by default; in Redis when REDIS_URL is set, shared by every predictor replica.
// Reloading a model drops its entries (`invalidate`), in every replica for Redis.
import { createHash } from 'node:crypto';
import { createClient, type RedisClientType } from 'redis';

export interface PredictionCache {
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string): Promise<void>;
  /** Drops every entry of a model (`modelKey` as given to `key`). */
  invalidate(modelKey: string): Promise<void>;
  close(): Promise<void>;
}

/** The cache key: the model first (invalidation finds its entries by that prefix), then a hash of the rest. */
export function cacheKey(modelKey: string, image: Uint8Array, ...parts: Array<string | number | undefined>): string {
  const hash = createHash('sha256').update(image);
  for (const part of parts) hash.update(`\u0000${part ?? ''}`);
  return `${encodeURIComponent(modelKey)}|${hash.digest('hex')}`;
}

export class MemoryCache implements PredictionCache {
  readonly #entries = new Map<string, string>();
  readonly #max: number;

  constructor(maxEntries: number) {
    this.#max = maxEntries;
  }

  async get(key: string): Promise<string | undefined> {
    const value = this.#entries.get(key);
    if (value === undefined) return undefined;
    this.#entries.delete(key);
    this.#entries.set(key, value);
    return value;
  }

  async set(key: string, value: string): Promise<void> {
    if (this.#max <= 0) return;
    this.#entries.delete(key);
    this.#entries.set(key, value);
    while (this.#entries.size > this.#max) this.#entries.delete(this.#entries.keys().next().value!);
  }

  async invalidate(modelKey: string): Promise<void> {
    const prefix = `${encodeURIComponent(modelKey)}|`;
    for (const key of [...this.#entries.keys()]) if (key.startsWith(prefix)) this.#entries.delete(key);
  }

  async close(): Promise<void> {}
}

export class RedisCache implements PredictionCache {
  readonly #client: RedisClientType;
  readonly #ttlSeconds: number;
  static readonly PREFIX = 'kinfer:predict:';

  private constructor(client: RedisClientType, ttlSeconds: number) {
    this.#client = client;
    this.#ttlSeconds = ttlSeconds;
  }

  static async connect(url: string, ttlSeconds: number, onError: (err: unknown) => void): Promise<RedisCache> {
    const client = createClient({ url }) as RedisClientType;
    client.on('error', onError);
    await client.connect();
    return new RedisCache(client, ttlSeconds);
  }

  // A cache that does not answer is a miss, not a failed prediction.
  async get(key: string): Promise<string | undefined> {
    if (!this.#client.isReady) return undefined;
    return (await this.#client.get(RedisCache.PREFIX + key).catch(() => null)) ?? undefined;
  }

  async set(key: string, value: string): Promise<void> {
    if (!this.#client.isReady) return;
    await this.#client.set(RedisCache.PREFIX + key, value, { expiration: { type: 'EX', value: this.#ttlSeconds } }).catch(() => undefined);
  }

  async invalidate(modelKey: string): Promise<void> {
    const match = `${RedisCache.PREFIX}${encodeURIComponent(modelKey).replace(/[*?[\]\\]/g, '\\$&')}|*`;
    for await (const keys of this.#client.scanIterator({ MATCH: match, COUNT: 500 })) if (keys.length > 0) await this.#client.unlink(keys);
  }

  async close(): Promise<void> {
    await this.#client.close().catch(() => undefined);
  }
}
