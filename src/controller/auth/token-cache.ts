// API tokens kept for a while instead of read per request: the predictor answers hundreds of
// requests a second with one token, and a database round trip per request (an UPDATE-guarded
// SELECT, its socket write and Postgres's own CPU) cost it a few % of its batched throughput
// (bench:predict --kinfer-only, 2026-12-02, 2 cores: 82-84 -> 84-86 images/s; no lookup at all, 87-89).
//
// A revocation must still take effect at once, at every replica: TokenStore.revoke NOTIFYs
// TOKEN_CHANGES_CHANNEL, and `forget` drops the token. While that channel is not listening, a
// revocation could go unheard, so nothing is cached, and what was cached is dropped when it is
// lost. `ttlMs` bounds everything else (an expiry is checked by the Authenticator on every request
// anyway; `last_used_at` is written by the lookups, at most once a minute).
import { LRUCache } from 'lru-cache';
import { hashToken, type ApiToken, type TokenLookup } from '../../db/token-store.ts';

export interface TokenCacheOptions {
  ttlMs: number;
  /** Tokens kept at most (the least recently used goes first). */
  maxEntries: number;
}

export class CachedTokenLookup implements TokenLookup {
  readonly #store: TokenLookup;
  readonly #ttlMs: number;
  /** By the secret's hash: the secrets themselves are not kept. */
  readonly #entries: LRUCache<string, ApiToken>;
  #listening = false;
  /**
   * Counts forgets: a lookup that began before one is not kept, since it may have read the token
   * just before its revocation committed and would otherwise outlive it.
   */
  #generation = 0;

  constructor(store: TokenLookup, opts: TokenCacheOptions) {
    this.#store = store;
    this.#ttlMs = opts.ttlMs;
    this.#entries = new LRUCache({ max: opts.maxEntries, ttl: Math.max(1, opts.ttlMs) });
  }

  get size(): number {
    return this.#entries.size;
  }

  async findBySecret(secret: string): Promise<ApiToken | null> {
    if (!this.#listening || this.#ttlMs <= 0) return this.#store.findBySecret(secret);
    const key = hashToken(secret);
    const hit = this.#entries.get(key);
    if (hit) return hit;
    const generation = this.#generation;
    const token = await this.#store.findBySecret(secret);
    // Only usable tokens: a refused one (unknown, revoked) is read again next time, so a token
    // made usable again (the admin token restored at start-up) is not refused from here.
    if (token && !token.revoked_at && this.#listening && generation === this.#generation) this.#entries.set(key, token);
    return token;
  }

  /** Token `id` changed (revoked): the next request with it reads the store. */
  forget(id: string): void {
    this.#generation++;
    for (const [key, token] of [...this.#entries.entries()]) if (token.id === id) this.#entries.delete(key);
  }

  /** Whether changes are heard (the LISTEN connection is up). Either way, what was kept is dropped. */
  set listening(on: boolean) {
    this.#generation++;
    this.#entries.clear();
    this.#listening = on;
  }
}
