import { randomUUID } from 'node:crypto';
import { useGraphQLSSE } from '@graphql-yoga/plugin-graphql-sse';
import { TOKEN_HEADER_KEY, TOKEN_QUERY_KEY, type Response as SseResponse } from 'graphql-sse';
import { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { AuthService } from '../auth/auth-service.js';
import { bearerSecret } from '../auth/secrets.js';
import { isDatabaseUnavailable } from '../db/unavailable.js';
import { UnauthenticatedError } from '../errors.js';

/** How long a reserved stream may wait for its client to open it before it is dropped. */
const RESERVATION_TTL_MS = 30_000;

/**
 * The graphql-sse protocol's single connection mode, at `<GraphQL path>/stream`, through yoga's
 * plugin: a client reserves a stream (PUT), opens it (GET, `text/event-stream`) and sends its
 * operations (POST, each with its stream token) to run on it, so many subscriptions share one
 * connection. Each POST carries its own `Authorization` and is authenticated, limited and masked
 * like any other operation (the plugin runs it through yoga's envelop). A reservation needs a
 * valid token too, and one that is not opened within 30 s is dropped. The distinct connections
 * mode (a POST or GET with `Accept: text/event-stream`) is answered on the GraphQL path itself
 * by yoga, and at this path by the plugin.
 */
export function useSingleConnectionSSE(deps: {
  graphqlPath: string;
  auth: Pick<AuthService, 'authenticate'>;
  /** Default 30 s. */
  reservationTtlMs?: number;
}): Plugin {
  const endpoint = `${deps.graphqlPath}/stream`;
  let fetchAPI: { Request: typeof Request } | null = null;
  const sse = useGraphQLSSE({
    endpoint,
    async authenticate(request) {
      if (request.method !== 'PUT') {
        return (
          request.headers.get(TOKEN_HEADER_KEY) ??
          new URL(request.url ?? '', 'http://localhost/').searchParams.get(TOKEN_QUERY_KEY) ??
          // No stream: the distinct connections mode; the operation's own token is checked.
          randomUUID()
        );
      }
      try {
        await deps.auth.authenticate(bearerSecret(request.headers.get('authorization')));
      } catch (error) {
        if (error instanceof UnauthenticatedError) return refusal(401, error.message);
        if (isDatabaseUnavailable(error)) return refusal(503, 'the database is unavailable');
        throw error;
      }
      const token = randomUUID();
      const ttl = deps.reservationTtlMs ?? RESERVATION_TTL_MS;
      setTimeout(() => void dropUnopened(token).catch(() => {}), ttl).unref();
      return token;
    },
  }) as Plugin;

  /**
   * A reserved stream the client never opened stays in the plugin's memory until it is opened.
   * Open it here and close it at once: that removes it (one already open answers 409).
   */
  async function dropUnopened(token: string): Promise<void> {
    if (!fetchAPI) return;
    const request = new fetchAPI.Request(`http://localhost${endpoint}`, {
      headers: { accept: 'text/event-stream', [TOKEN_HEADER_KEY]: token },
    });
    let response: Response | null = null;
    await sse.onRequest?.({
      request,
      serverContext: {},
      endResponse: (answer: Response) => void (response = answer),
    } as unknown as Parameters<NonNullable<Plugin['onRequest']>>[0]);
    // Its first message (a comment) is there at once; a stream cancelled before it is read
    // would not reach the plugin.
    const reader = (response as Response | null)?.body?.getReader();
    await reader?.read();
    await reader?.cancel();
  }

  return {
    ...sse,
    onYogaInit(payload) {
      fetchAPI = payload.yoga.fetchAPI;
      return sse.onYogaInit?.(payload);
    },
    // The plugin lets a document that does not parse (or has too many tokens) throw, which
    // would answer 500: it is the client's error, answered 400 with the error, as graphql-sse
    // itself does.
    onRequest(payload) {
      if (!payload.request.url.split('?', 1)[0]!.endsWith(endpoint)) return;
      return Promise.resolve(sse.onRequest?.(payload)).catch((error: unknown) => {
        if (!(error instanceof GraphQLError)) throw error;
        payload.endResponse(
          new payload.fetchAPI.Response(JSON.stringify({ errors: [error.toJSON()] }), {
            status: 400,
            headers: { 'content-type': 'application/json; charset=utf-8' },
          }),
        );
      });
    },
  };
}

function refusal(status: 401 | 503, message: string): SseResponse {
  return [
    JSON.stringify({
      errors: [
        {
          message,
          extensions: { code: status === 401 ? 'UNAUTHENTICATED' : 'SERVICE_UNAVAILABLE' },
        },
      ],
    }),
    {
      status,
      statusText: status === 401 ? 'Unauthorized' : 'Service Unavailable',
      headers: { 'content-type': 'application/json; charset=utf-8' },
    },
  ];
}
