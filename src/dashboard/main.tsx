import { render } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { Client } from 'graphql-ws';
import { ApiError, connectLive, gql, setAuthFailureHandler, type LiveState } from './api.js';
import { ConnectionBadge } from './connection-badge.js';
import { RunPage } from './run-page.js';
import { RunsPage } from './runs-page.js';
import { TokenForm } from './token-form.js';
import { canWrite, type Role, type StatusInfo } from './types.js';

const TOKEN_KEY = 'runstate.token';

type Route = { page: 'runs'; params: URLSearchParams } | { page: 'run'; id: string };

/** The route in the hash: `#/` (runs, with ?project=&status=) or `#/runs/<id>`. */
function readRoute(): Route {
  const hash = location.hash.replace(/^#/, '') || '/';
  const [path = '/', query = ''] = hash.split('?');
  const run = /^\/runs\/([^/]+)$/.exec(path);
  if (run) return { page: 'run', id: decodeURIComponent(run[1]!) };
  return { page: 'runs', params: new URLSearchParams(query) };
}

function App() {
  const [token, setToken] = useState<string | null>(() => sessionStorage.getItem(TOKEN_KEY));
  const [auth, setAuth] = useState<'checking' | 'needed' | 'ok'>('checking');
  const [authError, setAuthError] = useState<string | null>(null);
  /** +1 for each token submitted, so the same token pasted again is checked again. */
  const [submissions, setSubmissions] = useState(0);
  const [statuses, setStatuses] = useState<StatusInfo[]>([]);
  /** What the token may do: the run page's buttons are for WRITE and ADMIN. */
  const [role, setRole] = useState<Role | null>(null);
  const [route, setRoute] = useState(readRoute);
  const [live, setLive] = useState<LiveState>('connecting');
  const [client, setClient] = useState<Client | null>(null);
  /** +1 each time the live connection is (back) up; null while it is not. */
  const [liveEpoch, setLiveEpoch] = useState<number | null>(null);
  const epochs = useRef(0);
  const main = useRef<HTMLElement>(null);

  useEffect(() => {
    const onHash = () => {
      setRoute(readRoute());
      // A new page: tell screen readers, and start keyboard navigation from its top.
      main.current?.focus();
    };
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);

  useEffect(() => {
    document.title = route.page === 'run' ? 'Run · runstate' : 'Runs · runstate';
  }, [route]);

  // Who am I? Without a working token (and with auth on), ask for one.
  useEffect(() => {
    let cancelled = false;
    gql<{ viewer: { role: Role }; lifecycle: { statuses: StatusInfo[] } }>(
      `{ viewer { role } lifecycle { statuses { status category color } } }`,
      {},
      token,
    ).then(
      (data) => {
        if (cancelled) return;
        setStatuses(data.lifecycle.statuses);
        setRole(data.viewer.role);
        setAuth('ok');
      },
      (error: unknown) => {
        if (cancelled) return;
        if (error instanceof ApiError && error.code === 'UNAUTHENTICATED') {
          if (token) setAuthError('That token was not accepted.');
          sessionStorage.removeItem(TOKEN_KEY);
          setAuth('needed');
        } else setAuthError(error instanceof Error ? error.message : String(error));
      },
    );
    return () => {
      cancelled = true;
    };
  }, [token, submissions]);

  useEffect(() => {
    if (auth !== 'ok') return;
    const askAgain = () => {
      // The token was revoked (or refused) while the page was open: ask for another.
      sessionStorage.removeItem(TOKEN_KEY);
      setAuthError('The token was refused or revoked: paste another.');
      setAuth('needed');
    };
    setAuthFailureHandler(askAgain);
    const connection = connectLive(
      token,
      (state) => {
        setLive(state);
        setLiveEpoch(state === 'live' ? ++epochs.current : null);
      },
      askAgain,
    );
    setClient(connection);
    return () => void connection.dispose();
  }, [auth, token]);

  const colors = useMemo(() => new Map(statuses.map((s) => [s.status, s.color])), [statuses]);

  return (
    <>
      <a
        class="skip"
        href="#main"
        onClick={(event) => {
          // The hash is the router's: move focus without navigating.
          event.preventDefault();
          main.current?.focus();
        }}
      >
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href="#/">
          runstate
        </a>
        {auth === 'ok' && <ConnectionBadge state={live} />}
      </header>
      <main id="main" tabIndex={-1} ref={main}>
        {auth === 'checking' && !authError && <p class="muted">Loading…</p>}
        {auth === 'checking' && authError && (
          <p class="error" role="alert">
            {authError}
          </p>
        )}
        {auth === 'needed' && (
          <TokenForm
            error={authError}
            onToken={(value) => {
              sessionStorage.setItem(TOKEN_KEY, value);
              setAuthError(null);
              setAuth('checking');
              setToken(value);
              setSubmissions((n) => n + 1);
            }}
          />
        )}
        {auth === 'ok' && client && route.page === 'runs' && (
          <RunsPage
            token={token}
            client={client}
            statuses={statuses}
            params={route.params}
            liveEpoch={liveEpoch}
          />
        )}
        {auth === 'ok' && client && route.page === 'run' && (
          <RunPage
            key={route.id}
            token={token}
            client={client}
            id={route.id}
            colors={colors}
            liveEpoch={liveEpoch}
            mayWrite={canWrite(role)}
          />
        )}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
