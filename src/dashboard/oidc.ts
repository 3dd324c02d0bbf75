// Sign-in with the OIDC provider: the authorization code flow with PKCE (RFC 7636), as a public
// client (no secret in the browser). The access token it gets (for the API's audience) is the
// bearer token of every call, kept for the tab like a typed one.
import { token } from './api.ts';

export interface SignInConfig {
  issuer: string;
  client_id: string;
  audience: string;
  scopes: string;
}

const PENDING = 'kinfer-oidc-pending';
const redirectUri = () => `${window.location.origin}/auth/callback`;

const base64url = (bytes: Uint8Array) =>
  btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '');
const random = (n: number) => base64url(crypto.getRandomValues(new Uint8Array(n)));

async function discovery(issuer: string): Promise<{ authorization_endpoint: string; token_endpoint: string }> {
  const res = await fetch(`${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`);
  if (!res.ok) throw new Error(`the identity provider's discovery document did not load (${res.status})`);
  return res.json();
}

/** Leaves for the provider's sign-in page; it comes back to /auth/callback. */
export async function startSignIn(config: SignInConfig, returnTo: string): Promise<void> {
  const { authorization_endpoint } = await discovery(config.issuer);
  const verifier = random(48);
  const challenge = base64url(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier))));
  const state = random(24);
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state, returnTo }));
  const url = new URL(authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: config.client_id,
    redirect_uri: redirectUri(),
    scope: config.scopes,
    state,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    resource: config.audience,
  }).toString();
  window.location.assign(url.toString());
}

/** At /auth/callback: the code for a token; where to go next. */
export async function completeSignIn(config: SignInConfig): Promise<string> {
  const params = new URLSearchParams(window.location.search);
  const pending = JSON.parse(sessionStorage.getItem(PENDING) ?? 'null') as { verifier: string; state: string; returnTo: string } | null;
  sessionStorage.removeItem(PENDING);
  if (params.get('error')) throw new Error(`the identity provider refused: ${params.get('error_description') ?? params.get('error')}`);
  if (!pending || params.get('state') !== pending.state) throw new Error('this sign-in was not started here (its state does not match); sign in again');
  const { token_endpoint } = await discovery(config.issuer);
  const res = await fetch(token_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: params.get('code') ?? '',
      redirect_uri: redirectUri(),
      client_id: config.client_id,
      code_verifier: pending.verifier,
      resource: config.audience,
    }),
  });
  const body = (await res.json()) as { access_token?: string; error?: string; error_description?: string };
  if (!body.access_token) throw new Error(`no token from the identity provider: ${body.error_description ?? body.error ?? res.status}`);
  token.set(body.access_token);
  return pending.returnTo || '/';
}
