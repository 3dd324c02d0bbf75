// The access settings every service that answers users reads from its environment (the
// controller, the predictor): OIDC and its groups, as one set of variables and one Authenticator.
import { z } from 'zod';
import type { TokenLookup } from '../../db/token-store.ts';
import { Authenticator } from './authenticator.ts';
import { OidcVerifier } from './oidc.ts';

/** A comma-separated list; empty or unset is []. */
export const csv = z
  .string()
  .default('')
  .transform((s) =>
    s
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean),
  );

export const OIDC_ENV = {
  KINFER_OIDC_ISSUER: z.url().optional(),
  KINFER_OIDC_AUDIENCE: z.string().optional(),
  KINFER_OIDC_USER_CLAIM: z.string().default('sub'),
  KINFER_OIDC_GROUPS_CLAIM: z.string().default('groups'),
  KINFER_OIDC_ADMIN_GROUPS: csv,
  KINFER_OIDC_USER_GROUPS: csv,
  KINFER_OIDC_VIEWER_GROUPS: csv,
  /** `group=namespace,...`: members see the jobs applied with kubectl in that namespace. */
  KINFER_OIDC_NAMESPACE_GROUPS: csv.transform((pairs, ctx) => {
    const map: Record<string, string> = {};
    for (const pair of pairs) {
      const [group, ns] = pair.split('=');
      if (!group || !ns) ctx.addIssue({ code: 'custom', message: `"${pair}" is not group=namespace` });
      else map[group] = ns;
    }
    return map;
  }),
  /** The dashboard's public client at the provider: sign-in by authorization code with PKCE. */
  KINFER_OIDC_DASHBOARD_CLIENT_ID: z.string().min(1).optional(),
  KINFER_OIDC_DASHBOARD_SCOPES: z.string().default('openid'),
  KINFER_OIDC_ALGORITHMS: z
    .string()
    .default('RS256,ES256,PS256,EdDSA')
    .transform((s) => s.split(',').map((a) => a.trim()))
    .pipe(z.array(z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'])).min(1)),
};

export type OidcConfig = z.output<z.ZodObject<typeof OIDC_ENV>>;

/** API tokens always; OIDC tokens too when KINFER_OIDC_ISSUER is set. */
export function authenticatorOf(config: OidcConfig, tokens: TokenLookup): Authenticator {
  if (config.KINFER_OIDC_ISSUER && !config.KINFER_OIDC_AUDIENCE) throw new Error('KINFER_OIDC_AUDIENCE must be set with KINFER_OIDC_ISSUER');
  return new Authenticator({
    tokens,
    oidc: config.KINFER_OIDC_ISSUER
      ? {
          verifier: new OidcVerifier({
            issuer: config.KINFER_OIDC_ISSUER,
            audience: config.KINFER_OIDC_AUDIENCE!,
            userClaim: config.KINFER_OIDC_USER_CLAIM,
            groupsClaim: config.KINFER_OIDC_GROUPS_CLAIM,
            algorithms: config.KINFER_OIDC_ALGORITHMS,
          }),
          groups: {
            admin: config.KINFER_OIDC_ADMIN_GROUPS,
            user: config.KINFER_OIDC_USER_GROUPS,
            viewer: config.KINFER_OIDC_VIEWER_GROUPS,
            namespaces: config.KINFER_OIDC_NAMESPACE_GROUPS,
          },
        }
      : undefined,
  });
}

/** What the dashboard needs to sign a user in with the OIDC provider (public: no secret in it). */
export function dashboardSignIn(config: OidcConfig): { issuer: string; client_id: string; audience: string; scopes: string } | null {
  if (!config.KINFER_OIDC_ISSUER || !config.KINFER_OIDC_DASHBOARD_CLIENT_ID || !config.KINFER_OIDC_AUDIENCE) return null;
  return {
    issuer: config.KINFER_OIDC_ISSUER,
    client_id: config.KINFER_OIDC_DASHBOARD_CLIENT_ID,
    audience: config.KINFER_OIDC_AUDIENCE,
    scopes: config.KINFER_OIDC_DASHBOARD_SCOPES,
  };
}
