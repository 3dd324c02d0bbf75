// The kinfer dashboard: served by the controller on the same origin as the API, one bundle.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, onUnauthorized, token } from './api.ts';
import { Compare } from './pages/Compare.tsx';
import { History } from './pages/History.tsx';
import { JobPage } from './pages/JobPage.tsx';
import { NewTestRun } from './pages/NewTestRun.tsx';
import { Overview } from './pages/Overview.tsx';
import { Predict } from './pages/Predict.tsx';
import { completeSignIn, startSignIn, type SignInConfig } from './oidc.ts';
import { linkProps, navigate, useLocation } from './router.ts';

const NAV = [
  ['/', 'Overview'],
  ['/predict', 'Predict'],
  ['/test-runs/new', 'New test run'],
  ['/history', 'History'],
] as const;

function SignIn({ onDone }: { onDone: () => void }) {
  const [value, setValue] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [sso, setSso] = useState<SignInConfig | null>(null);
  useEffect(() => {
    void api('GET', '/auth/config').then(
      (c: { oidc: SignInConfig | null }) => setSso(c.oidc),
      () => undefined,
    );
  }, []);
  return (
    <main>
      <h1>Sign in</h1>
      {sso && (
        <p>
          <button
            type="button"
            onClick={() => void startSignIn(sso, window.location.pathname + window.location.search).catch((e: Error) => setError(e.message))}
          >
            Sign in with {new URL(sso.issuer).host}
          </button>
        </p>
      )}
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          token.set(value.trim());
          try {
            await api('GET', '/capabilities');
            onDone();
          } catch {
            token.clear();
            setError('That token is not accepted.');
          }
        }}
      >
        <label>
          API token
          <input type="password" value={value} onInput={(e) => setValue(e.currentTarget.value)} autoComplete="current-password" required />
        </label>
        <button type="submit">Sign in</button>
        {error && <p role="alert">{error}</p>}
      </form>
      <p>
        Make one with <code>kinfer token create --name dashboard</code>.
      </p>
    </main>
  );
}

/** /auth/callback: back from the identity provider with a code. */
function Callback({ onDone }: { onDone: () => void }) {
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    void api('GET', '/auth/config')
      .then((c: { oidc: SignInConfig | null }) => {
        if (!c.oidc) throw new Error('single sign-on is not configured here');
        return completeSignIn(c.oidc);
      })
      .then(
        (returnTo) => {
          navigate(returnTo);
          onDone();
        },
        (e: Error) => setError(e.message),
      );
  }, []);
  return <main>{error ? <p role="alert">{error}</p> : <p aria-busy="true">Signing in…</p>}</main>;
}

function Page() {
  const { path, query } = useLocation();
  if (path === '/') return <Overview />;
  if (path === '/predict') return <Predict />;
  if (path === '/test-runs/new') return <NewTestRun />;
  if (path === '/history') return <History />;
  if (path === '/compare') return <Compare ids={(query.get('ids') ?? '').split(',').filter(Boolean)} />;
  const job = /^\/(test-runs|inference-jobs)\/([0-9a-f-]{36})$/.exec(path);
  if (job) return <JobPage segment={job[1] as 'test-runs' | 'inference-jobs'} id={job[2]!} query={query} />;
  return (
    <main>
      <h1>Not found</h1>
      <p>No page at {path}.</p>
    </main>
  );
}

function App() {
  const [signedIn, setSignedIn] = useState<boolean | null>(null);
  const { path } = useLocation();
  useEffect(() => {
    const out = () => setSignedIn(false);
    onUnauthorized.add(out);
    // A browser that sends its own Authorization header (a proxy) is signed in already. A refusal
    // that comes back after a sign-in (the callback's, or the form's) has finished changes nothing.
    api('GET', '/capabilities').then(
      () => setSignedIn(true),
      () => setSignedIn((now) => now ?? false),
    );
    return () => void onUnauthorized.delete(out);
  }, []);
  return (
    <>
      <header>
        <nav aria-label="Main">
          <strong>kinfer</strong>
          {NAV.map(([href, label]) => (
            <a key={href} {...linkProps(href)} aria-current={path === href ? 'page' : undefined}>
              {label}
            </a>
          ))}
        </nav>
      </header>
      {path === '/auth/callback' ? (
        <Callback onDone={() => setSignedIn(true)} />
      ) : signedIn === null ? (
        <main aria-busy="true" />
      ) : signedIn ? (
        <Page />
      ) : (
        <SignIn onDone={() => setSignedIn(true)} />
      )}
    </>
  );
}

// The local sign-in link `kinfer serve` prints (`/#token=...`, as Jupyter's): the token is kept
// for the tab and taken out of the address bar (a fragment never reaches a server or its logs).
const fromLink = new URLSearchParams(window.location.hash.slice(1)).get('token');
if (fromLink) {
  token.set(fromLink);
  window.history.replaceState(null, '', window.location.pathname + window.location.search);
}

render(<App />, document.getElementById('app')!);
