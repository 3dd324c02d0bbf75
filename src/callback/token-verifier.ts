// Verifies callback tokens with the controller's public key only: signature, algorithm,
// audience, issuer, expiry; then binds the token to the job in the URL.
import { createPublicKey, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { LRUCache } from 'lru-cache';
import { CallbackTokenClaims, TOKEN_ALGORITHM, TOKEN_AUDIENCE, TOKEN_ISSUER, type JobKind } from '../contract/index.ts';
import { HttpError } from '../http/errors.ts';
import { checkEs256Key } from '../http/keys.ts';

/**
 * Tokens already verified, until they expire. A runner sends the same token with every report,
 * and an ES256 verification (with the key parsed per call, as jsonwebtoken does for a PEM) was a
 * quarter of the callback service's CPU per request (bench:callback). A token is the key: a
 * forged or altered one is never in the cache, and an entry leaves it at the token's `exp`.
 */
const VERIFIED_TOKENS = 10_000;

export class TokenVerifier {
  readonly #publicKey: KeyObject;
  readonly #verified = new LRUCache<string, CallbackTokenClaims>({ max: VERIFIED_TOKENS });

  /** Throws, naming what is wrong, unless the PEM is an EC P-256 public key. */
  constructor(publicKeyPem: string) {
    this.#publicKey = checkEs256Key(() => createPublicKey(publicKeyPem), 'KINFER_TOKEN_PUBLIC_KEY', 'public');
  }

  /** The claims of a valid token, or a 401. */
  verify(authorization: string | undefined): CallbackTokenClaims {
    const match = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
    if (!match) throw new HttpError('unauthorized', 'missing bearer token');
    const token = match[1]!;
    const known = this.#verified.get(token);
    if (known) return known;
    let decoded: unknown;
    try {
      decoded = jwt.verify(token, this.#publicKey, { algorithms: [TOKEN_ALGORITHM], audience: TOKEN_AUDIENCE, issuer: TOKEN_ISSUER });
    } catch (err) {
      const reason = err instanceof jwt.TokenExpiredError ? 'token expired' : `invalid token: ${(err as Error).message}`;
      throw new HttpError('unauthorized', reason);
    }
    const claims = CallbackTokenClaims.safeParse(decoded);
    if (!claims.success) throw new HttpError('unauthorized', 'token claims are malformed');
    // Kept until the second jsonwebtoken would call it expired (exp <= now, in whole seconds).
    const ttl = claims.data.exp * 1000 - Date.now();
    if (ttl > 0) this.#verified.set(token, claims.data, { ttl });
    return claims.data;
  }

  /** A 403 unless the token was minted for this job (and, where the path names one, this kind). */
  authorize(claims: CallbackTokenClaims, jobId: string, kind?: JobKind): void {
    if (claims.sub !== jobId) throw new HttpError('forbidden', 'token was issued for another job');
    if (kind && claims.kind !== kind) throw new HttpError('forbidden', `token was issued for a ${claims.kind}, not a ${kind}`);
  }
}
