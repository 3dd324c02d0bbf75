// Turns a request's bearer token into a Principal, or a 401 saying why: kinfer API tokens
// (`kinfer_...`, looked up by hash) or, when OIDC is configured, the issuer's JWTs. A callback
// token (audience kinfer-callback) is neither and is refused here, as an API token is refused by
// the callback service.
import { HttpError } from '../../http/errors.ts';
import { API_TOKEN_PREFIX, type TokenLookup } from '../../db/token-store.ts';
import { namespacesOf, roleOf, type GroupMapping, type Principal } from './principal.ts';
import { OidcTokenError, type OidcVerifier } from './oidc.ts';

export interface AuthenticatorOptions {
  tokens: TokenLookup;
  oidc?: { verifier: OidcVerifier; groups: GroupMapping } | undefined;
}

export class Authenticator {
  readonly #o: AuthenticatorOptions;

  constructor(opts: AuthenticatorOptions) {
    this.#o = opts;
  }

  get oidcEnabled(): boolean {
    return this.#o.oidc !== undefined;
  }

  async authenticate(authorization: string | undefined): Promise<Principal> {
    const match = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
    if (!match) throw new HttpError('unauthorized', 'missing bearer token (an API token or, where configured, an OIDC token)');
    const secret = match[1]!;
    if (secret.startsWith(API_TOKEN_PREFIX)) {
      const token = await this.#o.tokens.findBySecret(secret);
      if (!token) throw new HttpError('unauthorized', 'unknown API token');
      if (token.revoked_at) throw new HttpError('unauthorized', 'API token revoked');
      if (token.expires_at && token.expires_at.getTime() <= Date.now()) throw new HttpError('unauthorized', 'API token expired');
      return { subject: token.owner, role: token.role, namespaces: [], via: 'api-token' };
    }
    if (!this.#o.oidc) throw new HttpError('unauthorized', 'not a kinfer API token, and OIDC is not configured');
    let identity;
    try {
      identity = await this.#o.oidc.verifier.verify(secret);
    } catch (err) {
      if (err instanceof OidcTokenError) throw new HttpError('unauthorized', err.message);
      throw err;
    }
    const role = roleOf(identity.groups, this.#o.oidc.groups);
    if (!role) throw new HttpError('forbidden', `${identity.user} is in none of the groups kinfer admits`);
    return { subject: identity.user, role, namespaces: namespacesOf(identity.groups, this.#o.oidc.groups), via: 'oidc' };
  }
}
