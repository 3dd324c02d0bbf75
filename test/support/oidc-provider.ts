// A real OpenID Provider for the access tests: `oidc-provider` (a certified implementation) on
// loopback, issuing JWT access tokens by the client credentials grant. Each client stands for a
// user: its id is the token's `sub`, and its `groups` claim is what the test gives it. Tokens
// for another resource (wrong audience) and short-lived ones (expired) come from the same place.
import { generateKeyPairSync } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';

export interface TestOidc {
  issuer: string;
  /** A signed access token for `client` (a user), for `resource` (the audience). */
  token(client: string, opts?: { resource?: string }): Promise<string>;
  stop(): Promise<void>;
}

export const KINFER_AUDIENCE = 'https://kinfer.test/api';

/**
 * `dashboard`: also a public client for the dashboard's sign-in (authorization code with PKCE,
 * the provider's own login and consent pages: any login is a user, with the groups `users` gives).
 */
export async function startOidcProvider(
  users: Record<string, { groups: string[]; ttlSeconds?: number }>,
  opts: { dashboard?: { clientId: string; redirectUri: string } } = {},
): Promise<TestOidc> {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'test-key', use: 'sig', alg: 'RS256' };
  const server = (await import('node:http')).createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const dashboard = opts.dashboard;
  const provider = new Provider(issuer, {
    clients: [
      ...Object.keys(users).map((id) => ({
        client_id: id,
        client_secret: `${id}-secret`,
        grant_types: ['client_credentials'],
        redirect_uris: [],
        response_types: [],
      })),
      ...(dashboard
        ? [
            {
              client_id: dashboard.clientId,
              token_endpoint_auth_method: 'none' as const,
              grant_types: ['authorization_code'],
              response_types: ['code' as const],
              redirect_uris: [dashboard.redirectUri],
            },
          ]
        : []),
    ],
    // A browser on the dashboard's origin calls the token endpoint.
    clientBasedCORS: (_ctx, origin) => dashboard !== undefined && origin === new URL(dashboard.redirectUri).origin,
    findAccount: (_ctx, id) => ({ accountId: id, claims: () => ({ sub: id, groups: users[id]?.groups ?? [] }) }),
    jwks: { keys: [jwk as never] },
    features: {
      devInteractions: { enabled: dashboard !== undefined },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => KINFER_AUDIENCE,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resource, client) => ({
          scope: 'api',
          audience: resource,
          accessTokenFormat: 'jwt',
          accessTokenTTL: users[client.clientId]?.ttlSeconds ?? 600,
          jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
    ttl: { ClientCredentials: (_ctx, _token, client) => users[client.clientId]?.ttlSeconds ?? 600 },
    // The groups of the user: the signed-in account (authorization code), or the client standing for one.
    extraTokenClaims: (_ctx, token) => {
      const t = token as { accountId?: string; clientId?: string };
      return { groups: users[t.accountId ?? t.clientId ?? '']?.groups ?? [] };
    },
  });
  const handle = provider.callback();
  server.on('request', (req, res) => void handle(req, res));
  return {
    issuer,
    async token(client, opts = {}) {
      const res = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from(`${client}:${client}-secret`).toString('base64')}`,
        },
        body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'api', resource: opts.resource ?? KINFER_AUDIENCE }),
      });
      const body = (await res.json()) as { access_token?: string; error?: string; error_description?: string };
      if (!body.access_token) throw new Error(`the OIDC provider refused a token for ${client}: ${body.error}: ${body.error_description}`);
      return body.access_token;
    },
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
