// Verifies OIDC access or ID tokens (JWTs) against the issuer's published keys with jose: the
// signature by a key of the issuer's JWKS (discovered from /.well-known/openid-configuration),
// an allowed asymmetric algorithm (never `none`, never HS256 with a public key as the secret),
// the issuer, the audience and the expiry.
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload } from 'jose';

export interface OidcSettings {
  issuer: string;
  audience: string;
  /** The claim naming the user (`sub`, `email`, `preferred_username`...). */
  userClaim: string;
  /** The claim listing the user's groups. */
  groupsClaim: string;
  algorithms: string[];
}

export class OidcTokenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OidcTokenError';
  }
}

export class OidcVerifier {
  readonly #s: OidcSettings;
  #jwks: ReturnType<typeof createRemoteJWKSet> | undefined;

  constructor(settings: OidcSettings) {
    this.#s = settings;
  }

  /** The user and groups of a valid token; OidcTokenError saying why otherwise. */
  async verify(token: string): Promise<{ user: string; groups: string[] }> {
    let payload: JWTPayload;
    try {
      payload = (await jwtVerify(token, await this.#keys(), { issuer: this.#s.issuer, audience: this.#s.audience, algorithms: this.#s.algorithms })).payload;
    } catch (err) {
      if (err instanceof errors.JWTExpired) throw new OidcTokenError('token expired');
      if (err instanceof errors.JWTClaimValidationFailed) throw new OidcTokenError(`token refused: ${err.message} (claim ${err.claim})`);
      if (err instanceof errors.JOSEError) throw new OidcTokenError(`token refused: ${err.message}`);
      throw err;
    }
    const user = payload[this.#s.userClaim];
    if (typeof user !== 'string' || user === '') throw new OidcTokenError(`token refused: no "${this.#s.userClaim}" claim naming the user`);
    const rawGroups = payload[this.#s.groupsClaim];
    const groups = Array.isArray(rawGroups) ? rawGroups.filter((g): g is string => typeof g === 'string') : [];
    return { user, groups };
  }

  async #keys(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    if (this.#jwks) return this.#jwks;
    const url = `${this.#s.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
    const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
    if (!res.ok) throw new Error(`OIDC discovery at ${url} answered HTTP ${res.status}`);
    const { jwks_uri: jwksUri } = (await res.json()) as { jwks_uri?: string };
    if (!jwksUri) throw new Error(`OIDC discovery at ${url} names no jwks_uri`);
    this.#jwks = createRemoteJWKSet(new URL(jwksUri), { timeoutDuration: 10_000 });
    return this.#jwks;
  }
}
