// Verifies callback tokens with the controller's public key only: signature, algorithm,
// audience, issuer, expiry; then binds the token to the job in the URL.
import { createPublicKey } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { CallbackTokenClaims, TOKEN_ALGORITHM, TOKEN_AUDIENCE, TOKEN_ISSUER, type JobKind } from '../contract/index.ts';
import { HttpError } from '../http/errors.ts';
import { checkEs256Key } from '../http/keys.ts';

export class TokenVerifier {
  readonly #publicKey: string;

  /** Throws, naming what is wrong, unless the PEM is an EC P-256 public key. */
  constructor(publicKeyPem: string) {
    checkEs256Key(() => createPublicKey(publicKeyPem), 'KINFER_TOKEN_PUBLIC_KEY', 'public');
    this.#publicKey = publicKeyPem;
  }

  /** The claims of a valid token, or a 401. */
  verify(authorization: string | undefined): CallbackTokenClaims {
    const match = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
    if (!match) throw new HttpError('unauthorized', 'missing bearer token');
    let decoded: unknown;
    try {
      decoded = jwt.verify(match[1]!, this.#publicKey, { algorithms: [TOKEN_ALGORITHM], audience: TOKEN_AUDIENCE, issuer: TOKEN_ISSUER });
    } catch (err) {
      const reason = err instanceof jwt.TokenExpiredError ? 'token expired' : `invalid token: ${(err as Error).message}`;
      throw new HttpError('unauthorized', reason);
    }
    const claims = CallbackTokenClaims.safeParse(decoded);
    if (!claims.success) throw new HttpError('unauthorized', 'token claims are malformed');
    return claims.data;
  }

  /** A 403 unless the token was minted for this job (and, where the path names one, this kind). */
  authorize(claims: CallbackTokenClaims, jobId: string, kind?: JobKind): void {
    if (claims.sub !== jobId) throw new HttpError('forbidden', 'token was issued for another job');
    if (kind && claims.kind !== kind) throw new HttpError('forbidden', `token was issued for a ${claims.kind}, not a ${kind}`);
  }
}
