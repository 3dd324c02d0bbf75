// kinfer API tokens: random secrets shown once, stored as their SHA-256 (a stolen database gives
// no usable token), each with a name, an owner, a role and an optional expiry; revoked, not deleted.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';

export const ROLES = ['viewer', 'user', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** What makes a kinfer token recognisable (and tells it from a JWT). */
export const API_TOKEN_PREFIX = 'kinfer_';

export interface ApiToken {
  id: string;
  name: string;
  owner: string;
  role: Role;
  created_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
  last_used_at: Date | null;
}

export const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');
export const newTokenSecret = () => `${API_TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;

const COLUMNS = 'id, name, owner, role, created_at, expires_at, revoked_at, last_used_at';

/** NOTIFYed with `{"id": ...}` when a token is revoked: caches of tokens (the predictor's) drop it. */
export const TOKEN_CHANGES_CHANNEL = 'kinfer_token_changes';

/** How a request's secret becomes its token: the store, or a cache in front of it. */
export interface TokenLookup {
  /** The token a secret belongs to, whatever its state (the caller says why it is refused). */
  findBySecret(secret: string): Promise<ApiToken | null>;
}

export class TokenStore implements TokenLookup {
  readonly #ds: DataSource;

  constructor(ds: DataSource) {
    this.#ds = ds;
  }

  /** Creates a token; its secret is returned here and never again. */
  async create(
    input: { name: string; owner: string; role: Role; expiresAt: Date | null },
    secret = newTokenSecret(),
  ): Promise<{ token: ApiToken; secret: string }> {
    const [token] = (await this.#ds.query(
      `INSERT INTO api_tokens (id, name, owner, role, token_hash, expires_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING ${COLUMNS}`,
      [randomUUID(), input.name, input.owner, input.role, hashToken(secret), input.expiresAt],
    )) as ApiToken[];
    return { token: token!, secret };
  }

  /** Makes a known secret a token (the bootstrap admin token), once: a second start changes nothing. */
  async ensure(input: { name: string; owner: string; role: Role }, secret: string): Promise<void> {
    await this.#ds.query(
      `INSERT INTO api_tokens (id, name, owner, role, token_hash) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (token_hash) DO UPDATE SET revoked_at = NULL`,
      [randomUUID(), input.name, input.owner, input.role, hashToken(secret)],
    );
  }

  async findBySecret(secret: string): Promise<ApiToken | null> {
    // last_used_at is written at most once a minute: every request of a busy client (the
    // predictor's) would otherwise write and lock the token's row.
    const [token] = (await this.#ds.query(
      `WITH touched AS (
         UPDATE api_tokens SET last_used_at = now()
         WHERE token_hash = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '60 seconds')
       )
       SELECT ${COLUMNS} FROM api_tokens WHERE token_hash = $1`,
      [hashToken(secret)],
    )) as ApiToken[];
    return token ?? null;
  }

  async list(owner?: string): Promise<ApiToken[]> {
    return (await this.#ds.query(
      `SELECT ${COLUMNS} FROM api_tokens ${owner === undefined ? '' : 'WHERE owner = $1'} ORDER BY created_at DESC`,
      owner === undefined ? [] : [owner],
    )) as ApiToken[];
  }

  async get(id: string): Promise<ApiToken | null> {
    const [token] = (await this.#ds.query(`SELECT ${COLUMNS} FROM api_tokens WHERE id = $1`, [id])) as ApiToken[];
    return token ?? null;
  }

  /** Revokes a token, and tells every listener on TOKEN_CHANGES_CHANNEL (at commit). */
  async revoke(id: string): Promise<ApiToken | null> {
    const [token] = (await this.#ds.query(
      `WITH changed AS (UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1 RETURNING ${COLUMNS})
       SELECT changed.* FROM changed CROSS JOIN LATERAL (SELECT pg_notify('${TOKEN_CHANGES_CHANNEL}', json_build_object('id', changed.id)::text)) AS told`,
      [id],
    )) as ApiToken[];
    return token ?? null;
  }
}
