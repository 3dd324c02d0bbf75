// The predictor's cache of API tokens (src/controller/auth/token-cache.ts) over the real token
// store and Postgres: what it keeps, and every way a kept token must stop being trusted. A token
// revoked with plain SQL (no notification) shows whether an answer came from the cache.
import { CachedTokenLookup } from '../../src/controller/auth/token-cache.ts';
import { TokenStore, type ApiToken } from '../../src/db/token-store.ts';
import { testDatabase, type TestDatabase } from '../support/in-process.ts';

let db: TestDatabase;
let store: TokenStore;

beforeAll(async () => {
  db = await testDatabase();
  store = new TokenStore(db.ds);
});
afterAll(async () => {
  await db?.stop();
});

const newToken = (owner = 'dana') => store.create({ name: 'cached', owner, role: 'user', expiresAt: null });
const revokeQuietly = (id: string) => db.ds.query('UPDATE api_tokens SET revoked_at = now() WHERE id = $1', [id]);
const revokedAt = (t: ApiToken | null) => t?.revoked_at ?? null;

describe('the API token cache', () => {
  it('answers from what it read while changes are heard, and reads again after forget', async () => {
    const cache = new CachedTokenLookup(store, { ttlMs: 600_000, maxEntries: 10 });
    cache.listening = true;
    const { token, secret } = await newToken();
    expect((await cache.findBySecret(secret))?.id).toBe(token.id);
    await revokeQuietly(token.id);
    expect(revokedAt(await cache.findBySecret(secret))).toBeNull();
    cache.forget(token.id);
    expect(revokedAt(await cache.findBySecret(secret))).toBeInstanceOf(Date);
  });

  it('keeps nothing while changes are not heard, and drops what it kept when they stop being heard', async () => {
    const cache = new CachedTokenLookup(store, { ttlMs: 600_000, maxEntries: 10 });
    const a = await newToken();
    await cache.findBySecret(a.secret);
    expect(cache.size).toBe(0);
    cache.listening = true;
    await cache.findBySecret(a.secret);
    expect(cache.size).toBe(1);
    cache.listening = false;
    expect(cache.size).toBe(0);
    await revokeQuietly(a.token.id);
    expect(revokedAt(await cache.findBySecret(a.secret))).toBeInstanceOf(Date);
  });

  it('does not keep a read that a revocation overtook', async () => {
    // The store's answer is held until the token has been revoked and forgotten: what it read
    // may predate the revocation, so it must not be kept.
    let release!: () => void;
    let readDone!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const read = new Promise<void>((r) => (readDone = r));
    const slow = {
      findBySecret: async (s: string) => {
        const token = await store.findBySecret(s);
        readDone();
        await held;
        return token;
      },
    };
    const cache = new CachedTokenLookup(slow, { ttlMs: 600_000, maxEntries: 10 });
    cache.listening = true;
    const { token, secret } = await newToken();
    const first = cache.findBySecret(secret);
    await read; // the store has answered; the answer is held
    await store.revoke(token.id);
    cache.forget(token.id);
    release();
    expect(revokedAt(await first)).toBeNull();
    expect(cache.size).toBe(0);
    expect(revokedAt(await cache.findBySecret(secret))).toBeInstanceOf(Date);
  });

  it('keeps only usable tokens, for ttlMs, and at most maxEntries (the least recently used goes)', async () => {
    const revoked = await newToken();
    await store.revoke(revoked.token.id);
    const cache = new CachedTokenLookup(store, { ttlMs: 1_500, maxEntries: 2 });
    cache.listening = true;
    expect(await cache.findBySecret('kinfer_unknown')).toBeNull();
    expect(revokedAt(await cache.findBySecret(revoked.secret))).toBeInstanceOf(Date);
    expect(cache.size).toBe(0);

    const [a, b, c] = [await newToken('a'), await newToken('b'), await newToken('c')];
    await cache.findBySecret(a.secret);
    await cache.findBySecret(b.secret);
    await cache.findBySecret(a.secret); // a used last: b goes first
    await cache.findBySecret(c.secret);
    expect(cache.size).toBe(2);
    await revokeQuietly(a.token.id);
    await revokeQuietly(b.token.id);
    expect(revokedAt(await cache.findBySecret(a.secret))).toBeNull(); // kept
    expect(revokedAt(await cache.findBySecret(b.secret))).toBeInstanceOf(Date); // was dropped

    await new Promise((r) => setTimeout(r, 1_600));
    expect(revokedAt(await cache.findBySecret(a.secret))).toBeInstanceOf(Date); // expired, read again
  });
});
