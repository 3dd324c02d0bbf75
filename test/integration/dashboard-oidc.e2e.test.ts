// Signing in to the dashboard with an OIDC provider, in a real headless Chromium: a real
// oidc-provider (its own login and consent pages) and the real stack configured with its issuer
// and the dashboard's public client. The authorization code flow with PKCE gives the page an
// access token for the API's audience; the API takes it as the signed-in user with the role their
// groups give. A user without a kinfer group is signed in and still refused what needs a role.
import { chromium, type Browser, type Request } from 'playwright-core';
import { KINFER_AUDIENCE, startOidcProvider, type TestOidc } from '../support/oidc-provider.ts';
import { freePort } from '../support/ports.ts';
import { startTestStack, type TestStack } from '../support/test-stack.ts';

declare const sessionStorage: { getItem(key: string): string | null };

let oidc: TestOidc;
let stack: TestStack;
let browser: Browser;
let origin: string;

beforeAll(async () => {
  const apiPort = await freePort();
  origin = `http://127.0.0.1:${apiPort}`;
  oidc = await startOidcProvider(
    { alice: { groups: ['vision-team'] }, mallory: { groups: [] } },
    { dashboard: { clientId: 'kinfer-dashboard', redirectUri: `${origin}/auth/callback` } },
  );
  stack = await startTestStack(
    {
      KINFER_OIDC_ISSUER: oidc.issuer,
      KINFER_OIDC_AUDIENCE: KINFER_AUDIENCE,
      KINFER_OIDC_USER_GROUPS: 'vision-team',
      KINFER_OIDC_DASHBOARD_CLIENT_ID: 'kinfer-dashboard',
      KINFER_OIDC_DASHBOARD_SCOPES: 'openid api',
    },
    { apiPort },
  );
  browser = await chromium.launch({ executablePath: process.env.KINFER_CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox', '--disable-dev-shm-usage'] });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await stack?.stop();
  await oidc?.stop();
});

/**
 * Signs in through the provider's pages as `login`; the page's bearer token afterwards. With
 * `lateFirstCheck`, the check the dashboard makes as it loads /auth/callback (still without a
 * token, so refused with 401) answers only once the sign-in has finished, as on a busy server.
 */
async function signIn(login: string, { lateFirstCheck = false } = {}): Promise<{ token: string; url: string; heading: string | null }> {
  const context = await browser.newContext();
  const page = await context.newPage();
  const signedIn = Promise.withResolvers<void>();
  let held: Request | undefined;
  if (lateFirstCheck)
    await page.route(`${origin}/api/v1/capabilities`, async (route) => {
      const request = route.request();
      if (!request.headers()['authorization'] && new URL(request.frame().url()).pathname === '/auth/callback') {
        held = request;
        await signedIn.promise;
      }
      await route.continue();
    });
  await page.goto(`${origin}/history`);
  await page.getByRole('button', { name: /^Sign in with 127\.0\.0\.1:/ }).click();
  await page.waitForURL(new RegExp(`^${oidc.issuer}/interaction/`));
  await page.locator('input[name=login]').fill(login);
  await page.locator('input[name=password]').fill('any');
  await page.getByRole('button', { name: 'Sign-in' }).click();
  await page.getByRole('button', { name: 'Continue' }).click();
  // Back on the dashboard, at the page the sign-in started from.
  await page.waitForURL(`${origin}/history`);
  await page.locator('main h1', { hasText: 'History' }).waitFor();
  if (lateFirstCheck) {
    expect(held).toBeDefined();
    const lateAnswer = page.waitForResponse((res) => res.request() === held);
    signedIn.resolve();
    expect((await lateAnswer).status()).toBe(401);
    // Let the page take the answer in and render what it leads to.
    await page.evaluate(() => new Promise((done) => setTimeout(done, 200)));
  }
  const heading = await page.locator('main h1').textContent();
  const token = (await page.evaluate(() => sessionStorage.getItem('kinfer-token')))!;
  const url = page.url();
  await context.close();
  return { token, url, heading };
}

describe('the dashboard signed in with OIDC (authorization code with PKCE)', () => {
  it('says how to sign in, publicly', async () => {
    const res = await fetch(`${stack.apiUrl}/auth/config`);
    expect(await res.json()).toEqual({ oidc: { issuer: oidc.issuer, client_id: 'kinfer-dashboard', audience: KINFER_AUDIENCE, scopes: 'openid api' } });
  });

  it('signs a user in through the provider; the API takes the token as that user with their role', async () => {
    const { token, url } = await signIn('alice');
    expect(url).toBe(`${origin}/history`);
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { sub: string; aud: string | string[] };
    expect([claims.sub, claims.aud]).toEqual(['alice', KINFER_AUDIENCE]);
    const bearer = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    // A user (vision-team): may submit; the job is alice's.
    const created = await fetch(`${stack.apiUrl}/inference-jobs`, {
      method: 'POST',
      headers: bearer,
      body: JSON.stringify({
        checkpoint_path: `${stack.s3Prefix}/none.onnx`,
        task_type: 'image_classification',
        inference_type: 'single',
        input_config: { image_path: `${stack.s3Prefix}/a.png` },
      }),
    });
    expect(created.status).toBe(400); // admitted as a user: refused only for the missing model
    const tokens = await fetch(`${stack.apiUrl}/tokens`, { headers: bearer });
    expect(tokens.status).toBe(200);
  }, 60_000);

  it('stays signed in when the check the page made before signing in answers 401 afterwards', async () => {
    const { url, heading } = await signIn('alice', { lateFirstCheck: true });
    expect([url, heading]).toEqual([`${origin}/history`, 'History']);
  }, 60_000);

  it('a signed-in user without a kinfer group reads nothing that needs a role', async () => {
    const { token } = await signIn('mallory');
    const res = await fetch(`${stack.apiUrl}/test-runs`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(403);
  }, 60_000);
});
