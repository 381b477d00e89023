import { createClient, type Client } from 'graphql-ws';

/** Talking to runstate from the page: GraphQL over fetch, and one graphql-ws connection. */

export const GRAPHQL_PATH =
  document.querySelector<HTMLMetaElement>('meta[name="runstate-graphql-path"]')?.content ||
  '/graphql';

export class ApiError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

/** Codes that mean the token no longer works: the page asks for another. */
const AUTH_FAILURES = new Set(['UNAUTHENTICATED', 'TOKEN_REVOKED']);
let onAuthFailure: (code: string) => void = () => {};

/** Who is told when a request's token is refused (the app: it shows the token prompt). */
export function setAuthFailureHandler(handler: (code: string) => void): void {
  onAuthFailure = handler;
}

export async function gql<T>(
  query: string,
  variables: Record<string, unknown>,
  token: string | null,
): Promise<T> {
  let response: Response;
  try {
    response = await fetch(GRAPHQL_PATH, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/graphql-response+json',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: JSON.stringify({ query, variables }),
    });
  } catch {
    throw new ApiError('runstate cannot be reached', 'NETWORK');
  }
  const body = (await response.json().catch(() => ({}))) as {
    data?: T;
    errors?: { message: string; extensions?: { code?: string } }[];
  };
  const error = body.errors?.[0];
  if (error) {
    const code = error.extensions?.code ?? 'ERROR';
    if (token && AUTH_FAILURES.has(code)) onAuthFailure(code);
    throw new ApiError(error.message, code);
  }
  if (!body.data) throw new ApiError(`HTTP ${response.status}`, 'HTTP');
  return body.data;
}

export type LiveState = 'connecting' | 'live' | 'reconnecting';

/** Close code of a connection whose token was refused or revoked. */
const FORBIDDEN = 4403;

/**
 * One WebSocket for every subscription of the page. It retries for ever (with backoff), except
 * when the token is refused (`onForbidden`: ask for another). Pages subscribe while the state is
 * `live` and end their subscriptions when it is not, then load and subscribe again once it is
 * back: graphql-ws would otherwise re-send each old subscription with its old cursor.
 */
export function connectLive(
  token: string | null,
  onState: (state: LiveState) => void,
  onForbidden: () => void,
): Client {
  const url = new URL(GRAPHQL_PATH, location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const isForbidden = (event: unknown) => (event as { code?: number })?.code === FORBIDDEN;
  return createClient({
    url: url.toString(),
    connectionParams: token ? { token } : {},
    lazy: false,
    retryAttempts: Infinity,
    shouldRetry: (event) => !isForbidden(event),
    retryWait: (retries) =>
      new Promise((resolve) => setTimeout(resolve, Math.min(5000, 250 * 2 ** retries))),
    onNonLazyError: () => {},
    keepAlive: 10_000,
    on: {
      connected: () => onState('live'),
      closed: (event) => {
        if (isForbidden(event)) onForbidden();
        else onState('reconnecting');
      },
    },
  });
}

/**
 * Subscribe; answers the function that ends the subscription. `onEnded` is told when the server
 * ends it (an error such as SUBSCRIPTION_OVERFLOW, or completion): what the page shows may then
 * be stale, so it should load again.
 */
export function subscribe<T>(
  client: Client,
  query: string,
  variables: Record<string, unknown>,
  onData: (data: T) => void,
  onEnded: () => void = () => {},
): () => void {
  let stopped = false;
  const stop = client.subscribe<T>(
    { query, variables },
    {
      next: (result) => {
        if (result.errors?.length) return;
        if (result.data) onData(result.data as T);
      },
      error: () => !stopped && onEnded(),
      complete: () => !stopped && onEnded(),
    },
  );
  return () => {
    stopped = true;
    stop();
  };
}
