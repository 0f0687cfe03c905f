// The budget console: sign-in with the company IdP (OIDC, when the gateway offers one) or a gateway token, then Overview, Unit and Chargeback pages (hash routes).
import { StrictMode, useCallback, useEffect, useMemo, useState, type FormEvent } from 'react';
import { createRoot } from 'react-dom/client';
import { createClient, describeError } from './graphql.js';
import { createLiveClient } from './live.js';
import { ViewerQuery } from './queries.js';
import { SessionContext, type Session } from './api.js';
import { clearToken, graphiqlHref, readToken, saveToken } from './session.js';
import { completeOidcSignIn, isOidcCallback, loadOidcConfig, startOidcSignIn, type OidcConfig } from './oidc.js';
import { Overview } from './overview.js';
import { UnitPage } from './unit.js';
import { Chargeback } from './chargeback.js';
import './styles.css';

type Route = { page: 'overview' } | { page: 'unit'; id: string } | { page: 'chargeback' };

function parseRoute(hash: string): Route {
  const unit = /^#\/unit\/([^/?#]+)$/.exec(hash);
  if (unit) return { page: 'unit', id: decodeURIComponent(unit[1]!) };
  if (hash === '#/chargeback') return { page: 'chargeback' };
  return { page: 'overview' };
}

function useRoute(): Route {
  const [hash, setHash] = useState(window.location.hash);
  useEffect(() => {
    const onChange = () => setHash(window.location.hash);
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return useMemo(() => parseRoute(hash), [hash]);
}

async function signIn(token: string, signOut: (reason?: string) => void): Promise<Session | string> {
  const client = createClient(token);
  const result = await client.query(ViewerQuery, {}).toPromise();
  if (result.error || !result.data) return describeError(result.error) ?? 'The gateway did not answer.';
  const { viewer, accounts } = result.data;
  return { client, live: createLiveClient(token), token, role: viewer.role, subject: viewer.subject, unit: viewer.orgUnit, accounts, signOut };
}

function SignIn({ onToken, message, oidc }: { onToken(token: string): Promise<void>; message: string | null; oidc: OidcConfig | null }) {
  const [token, setToken] = useState('');
  const [busy, setBusy] = useState(false);
  const [redirecting, setRedirecting] = useState(false);
  const [oidcError, setOidcError] = useState<string | null>(null);
  const companySignIn = async () => {
    setRedirecting(true);
    setOidcError(null);
    try {
      await startOidcSignIn(oidc!);
    } catch (error) {
      setRedirecting(false);
      setOidcError(`The identity provider could not be reached (${(error as Error).message}).`);
    }
  };
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    await onToken(token.trim());
    setBusy(false);
  };
  return (
    <main className="signin">
      <h1>Budget console</h1>
      <p className="muted">HeyGen usage gateway: budgets, usage and chargeback for your part of the organisation.</p>
      {oidc && (
        <section className="oidc" aria-label="Company sign-in">
          <button type="button" onClick={() => void companySignIn()} disabled={redirecting}>
            {redirecting ? 'Opening your company sign-in…' : 'Sign in with your company account'}
          </button>
          <p className="hint">Through {new URL(oidc.issuer).host}. Or paste a gateway token below.</p>
          {oidcError && (
            <p className="error" role="alert">
              {oidcError}
            </p>
          )}
        </section>
      )}
      <form onSubmit={submit} aria-label="Sign in">
        <label htmlFor="token">Gateway token</label>
        <textarea id="token" name="token" rows={4} value={token} onChange={(e) => setToken(e.target.value)} autoComplete="off" spellCheck={false} required />
        <p className="hint">
          A token from <code>npm run token</code> (or printed by <code>npm run demo</code>). It is kept in this browser tab only.
        </p>
        {message && (
          <p className="error" role="alert">
            {message}
          </p>
        )}
        <button type="submit" disabled={busy || token.trim() === ''}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}

function Shell({ session, route }: { session: Session; route: Route }) {
  const [accountId, setAccountId] = useState(session.accounts[0]?.id ?? null);
  const account = session.accounts.find((a) => a.id === accountId) ?? null;
  const link = (page: Route['page'], label: string, href: string) => (
    <a href={href} aria-current={route.page === page ? 'page' : undefined}>
      {label}
    </a>
  );
  return (
    <>
      <header className="top">
        <a className="brand" href="#/">
          Budget console
        </a>
        <nav aria-label="Pages">
          {link('overview', 'Overview', '#/')}
          {link('chargeback', 'Chargeback', '#/chargeback')}
          <a href={graphiqlHref(session.token)} target="_blank" rel="noopener">
            GraphiQL
          </a>
        </nav>
        <div className="who">
          {session.accounts.length > 1 && (
            <label>
              Account{' '}
              <select value={accountId ?? ''} onChange={(e) => setAccountId(e.target.value)}>
                {session.accounts.map((a) => (
                  <option key={a.id} value={a.id}>
                    {a.name}
                  </option>
                ))}
              </select>
            </label>
          )}
          <span data-testid="whoami">
            {session.subject} · <strong>{session.role}</strong>
            {session.unit ? ` of ${session.unit.name}` : ''}
          </span>
          {account && <span className="muted" data-testid="timezone">Time zone: {account.timezone}</span>}
          <button type="button" className="link" onClick={() => session.signOut()}>
            Sign out
          </button>
        </div>
      </header>
      <main>
        {!account ? (
          <p className="empty">No account is visible to this token: ask an administrator which unit it belongs to.</p>
        ) : route.page === 'unit' ? (
          <UnitPage key={route.id} id={route.id} account={account} />
        ) : route.page === 'chargeback' ? (
          <Chargeback account={account} />
        ) : (
          <Overview account={account} />
        )}
      </main>
    </>
  );
}

function App() {
  const route = useRoute();
  const [session, setSession] = useState<Session | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  const [restoring, setRestoring] = useState(() => readToken() !== null || isOidcCallback());
  const [oidc, setOidc] = useState<OidcConfig | null>(null);
  const signOut = useCallback((reason?: string) => {
    clearToken();
    setSession(null);
    setMessage(reason ?? null);
  }, []);
  const acceptToken = useCallback(
    async (token: string) => {
      const result = await signIn(token, signOut);
      if (typeof result === 'string') {
        clearToken();
        setMessage(result);
        return;
      }
      saveToken(token);
      setMessage(null);
      setSession(result);
    },
    [signOut],
  );
  useEffect(() => {
    let cancelled = false;
    const callback = isOidcCallback();
    void (async () => {
      // The IdP's answer is used once: completeOidcSignIn drops the pending values and cleans the address first.
      const config = await loadOidcConfig().catch(() => null);
      if (cancelled) return;
      setOidc(config);
      if (callback) {
        try {
          if (!config) throw new Error('Company sign-in is not offered by this gateway.');
          await acceptToken(await completeOidcSignIn(config));
        } catch (error) {
          clearToken();
          setMessage((error as Error).message);
        }
        setRestoring(false);
        return;
      }
      const token = readToken();
      if (token) await acceptToken(token);
      setRestoring(false);
    })();
    return () => {
      cancelled = true;
    };
  }, [acceptToken]);
  if (restoring) return <p className="muted" role="status">Signing in…</p>;
  if (!session) return <SignIn onToken={acceptToken} message={message} oidc={oidc} />;
  return (
    <SessionContext.Provider value={session}>
      <Shell session={session} route={route} />
    </SessionContext.Provider>
  );
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
