// Mints the per-job callback token: ES256-signed, bound to one job id and kind, with an expiry.
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { checkEs256Key } from '../http/keys.ts';
import jwt from 'jsonwebtoken';
import { TOKEN_ALGORITHM, TOKEN_AUDIENCE, TOKEN_ISSUER, type JobKind } from '../contract/index.ts';

export class TokenIssuer {
  /** Parsed once: parsing the PEM per token cost the controller a few ms per job. */
  readonly #privateKey: KeyObject;
  readonly #ttlSeconds: number;

  /** Throws, naming what is wrong, unless the PEM is an EC P-256 private key (what ES256 signs with). */
  constructor(privateKeyPem: string, ttlSeconds: number) {
    this.#privateKey = checkEs256Key(() => createPrivateKey(privateKeyPem), 'KINFER_TOKEN_PRIVATE_KEY', 'private');
    this.#ttlSeconds = ttlSeconds;
  }

  issue(kind: JobKind, jobId: string): string {
    return jwt.sign({ kind }, this.#privateKey, {
      algorithm: TOKEN_ALGORITHM,
      subject: jobId,
      audience: TOKEN_AUDIENCE,
      issuer: TOKEN_ISSUER,
      expiresIn: this.#ttlSeconds,
    });
  }
}
