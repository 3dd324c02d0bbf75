// API tokens kept for a while instead of read per request: the predictor answers hundreds of
// requests a second with one token, and a database round trip per request (an UPDATE-guarded
// SELECT, its socket write and Postgres's own CPU) cost it 5-6% of its batched throughput
// (bench:predict, 2026-12-02: 82-84 -> 87-89 images/s on 2 cores).
//
// A revocation must still take effect at once, at every replica: TokenStore.revoke NOTIFYs
// TOKEN_CHANGES_CHANNEL, and `forget` drops the token. While that channel is not listening, a
// revocation could go unheard, so nothing is cached, and what was cached is dropped when it is
// lost. `ttlMs` bounds everything else (an expiry is checked by the Authenticator on every request
// anyway; `last_used_at` is written by the lookups, at most once a minute).
import { hashToken, type ApiToken, type TokenLookup } from '../../db/token-store.ts';

export interface TokenCacheOptions {
  ttlMs: number;
  /** Tokens kept at most (the least recently used goes first). */
  maxEntries: number;
}

export class CachedTokenLookup implements TokenLookup {
  readonly #store: TokenLookup;
  readonly #o: TokenCacheOptions;
  /** By the secret's hash: the secrets themselves are not kept. */
  readonly #entries = new Map<string, { token: ApiToken; until: number }>();
  #listening = false;
  /**
   * Counts forgets: a lookup that began before one is not kept, since it may have read the token
   * just before its revocation committed and would otherwise outlive it.
   */
  #generation = 0;

  constructor(store: TokenLookup, opts: TokenCacheOptions) {
    this.#store = store;
    this.#o = opts;
  }

  get size(): number {
    return this.#entries.size;
  }

  async findBySecret(secret: string): Promise<ApiToken | null> {
    if (!this.#listening || this.#o.ttlMs <= 0) return this.#store.findBySecret(secret);
    const key = hashToken(secret);
    const hit = this.#entries.get(key);
    if (hit) {
      this.#entries.delete(key);
      if (hit.until > performance.now()) {
        this.#entries.set(key, hit);
        return hit.token;
      }
    }
    const generation = this.#generation;
    const token = await this.#store.findBySecret(secret);
    // Only usable tokens: a refused one (unknown, revoked) is read again next time, so a token
    // made usable again (the admin token restored at start-up) is not refused from here.
    if (token && !token.revoked_at && this.#listening && generation === this.#generation) {
      this.#entries.set(key, { token, until: performance.now() + this.#o.ttlMs });
      if (this.#entries.size > this.#o.maxEntries) this.#entries.delete(this.#entries.keys().next().value!);
    }
    return token;
  }

  /** Token `id` changed (revoked): the next request with it reads the store. */
  forget(id: string): void {
    this.#generation++;
    for (const [key, entry] of this.#entries) if (entry.token.id === id) this.#entries.delete(key);
  }

  /** Whether changes are heard (the LISTEN connection is up). Either way, what was kept is dropped. */
  set listening(on: boolean) {
    this.#generation++;
    this.#entries.clear();
    this.#listening = on;
  }
}
