import type { Server } from 'node:http';
import { getOperationAST, GraphQLError, type ExecutionArgs } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import type { RunstateYoga } from './yoga.js';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { AuthService } from '../auth/auth-service.js';
import { connectionParamsSecret } from '../auth/secrets.js';
import { isDatabaseUnavailable } from '../db/unavailable.js';
import { LimitExceededError, ServerStoppingError, UnauthenticatedError } from '../errors.js';
import type { Limits } from '../limits/limits.js';
import type { Logger } from '../logger.js';
import { requestIdFrom } from '../ops/request-context.js';
import { originAllowed } from './cross-site.js';
import type { ErrorNaming } from '../graphql/domain-errors.js';

/** Longest subscription id accepted (graphql-ws echoes ids in close reasons of 123 bytes). */
const MAX_OPERATION_ID = 64;

export interface WebSocketEndpoint {
  readonly server: WebSocketServer;
  /**
   * Close every socket with 1012 (Service Restart: graphql-ws clients reconnect, to another
   * instance), terminate those that do not answer within a second, and stop.
   */
  close(): Promise<void>;
}

/**
 * graphql-ws on the GraphQL path of `httpServer`, running operations through yoga's envelop so
 * that plugins, context, limits and masking apply as over HTTP. Frames are capped before they
 * are read; browser pages of other origins, and newcomers during a drain, are refused.
 */
export function attachWebSocket(deps: {
  httpServer: Server;
  yoga: RunstateYoga;
  auth: AuthService;
  limits: Limits;
  logger: Logger;
  graphqlPath: string;
  corsOrigins: readonly string[];
  isDraining: () => boolean;
  /** How errors reach clients (graphql/domain-errors.ts), shared with yoga. */
  nameError: ErrorNaming;
}): WebSocketEndpoint {
  const { yoga, auth, limits, logger } = deps;
  const wsServer = new WebSocketServer({
    server: deps.httpServer,
    path: deps.graphqlPath,
    // Checked from each frame's header, before its payload is read: ws closes with 1009.
    maxPayload: limits.maxWsFrameBytes,
    // A draining instance takes no new sockets: 503, like its HTTP requests. A browser page of
    // an origin not allowed gets none either (browsers send Origin; other clients need not).
    verifyClient: (info, accept) => {
      if (deps.isDraining()) return accept(false, 503, 'Service Unavailable: shutting down');
      const origin = info.req.headers.origin;
      if (origin !== undefined && !originAllowed(origin, info.req.headers.host, deps.corsOrigins))
        return accept(false, 403, 'Forbidden: this origin may not open a WebSocket here');
      accept(true);
    },
  });
  /**
   * Each socket's id (its upgrade request's X-Request-Id, or a new one) and how many operations
   * it has started: an operation is logged as `<id>/<n>`.
   */
  const connections = new WeakMap<WebSocket, { id: string; operations: number }>();
  // Registered before graphql-ws's own listener, so it sees every socket first.
  wsServer.on('connection', (socket, request) => {
    connections.set(socket, { id: requestIdFrom(request.headers['x-request-id']), operations: 0 });
    screenMessages(socket, logger);
  });
  const nextRequestId = (socket: WebSocket): string | undefined => {
    const connection = connections.get(socket);
    return connection && `${connection.id}/${++connection.operations}`;
  };

  const disposable = useServer(
    {
      // A connection without a valid token is closed at once with 4403 Forbidden; a connection
      // whose token is revoked later is closed the same way (after its subscriptions ended
      // with TOKEN_REVOKED). While the database is away the token cannot be checked: 1013
      // (Try Again Later), which clients retry.
      onConnect: async (ctx) => {
        let principal;
        try {
          principal = await auth.authenticate(connectionParamsSecret(ctx.connectionParams));
        } catch (error) {
          if (error instanceof UnauthenticatedError) return false;
          if (isDatabaseUnavailable(error)) {
            ctx.extra.socket.close(1013, 'Try Again Later: the database is unavailable');
            return false;
          }
          throw error;
        }
        if (principal.tokenId != null) {
          const socket = ctx.extra.socket;
          const unwatch = auth.onRevoked(principal.tokenId, () => {
            setTimeout(() => socket.close(4403, 'Forbidden: the API token was revoked'), 100);
          });
          socket.once('close', unwatch);
        }
        return true;
      },
      execute: (args) => (args.rootValue as EnvelopRoot).execute(args) as never,
      subscribe: (args) => (args.rootValue as EnvelopRoot).subscribe(args) as never,
      onSubscribe: async (ctx, _id, payload) => {
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params: payload,
          requestId: nextRequestId(ctx.extra.socket),
        });
        let document;
        try {
          document = parse(payload.query);
        } catch (error) {
          // graphql-ws closes the whole socket on anything but GraphQLErrors here.
          return [
            error instanceof GraphQLError
              ? error
              : new GraphQLError('The document could not be parsed.', {
                  extensions: { code: 'BAD_USER_INPUT' },
                }),
          ];
        }
        // The new operation is in ctx.subscriptions already.
        if (Object.keys(ctx.subscriptions).length > limits.maxSubscriptionsPerConnection) {
          return [
            new LimitExceededError(
              'subscriptionsPerConnection',
              limits.maxSubscriptionsPerConnection,
              `this connection has ${limits.maxSubscriptionsPerConnection} operations open, ` +
                'the most allowed: complete one first',
            ),
          ];
        }
        const errors = validate(schema, document);
        if (errors.length > 0) return errors;
        // As over HTTP: a document whose operation cannot be chosen is the client's error.
        if (!getOperationAST(document, payload.operationName ?? undefined)) {
          return [
            new GraphQLError(
              payload.operationName
                ? `Unknown operation named "${payload.operationName}".`
                : 'Could not determine what operation to execute: name it with operationName.',
              { extensions: { code: 'OPERATION_RESOLUTION_FAILURE' } },
            ),
          ];
        }
        let contextValue;
        try {
          contextValue = await contextFactory();
        } catch (error) {
          // As over HTTP: a refused token is its error, a database that is away a 503.
          const named = deps.nameError(error);
          if (named) return [named];
          if (error instanceof GraphQLError) return [error];
          throw error;
        }
        // The drain may have begun while the token was checked; it no longer waits for newcomers.
        if (deps.isDraining()) return [new ServerStoppingError()];
        const args: ExecutionArgs = {
          schema,
          operationName: payload.operationName ?? null,
          document,
          variableValues: payload.variables ?? null,
          contextValue,
          rootValue: { execute, subscribe } satisfies EnvelopRoot,
        };
        return args;
      },
    },
    wsServer,
  );

  return {
    server: wsServer,
    async close() {
      for (const client of wsServer.clients)
        client.close(1012, 'Service Restart: reconnect, to another instance');
      // A peer that never answers the close frame would hold dispose() for ws's 30 s.
      setTimeout(() => {
        for (const client of wsServer.clients) client.terminate();
      }, 1000).unref();
      await disposable.dispose();
      await new Promise<void>((resolve) => wsServer.close(() => resolve()));
    },
  };
}

interface EnvelopRoot {
  execute: (args: ExecutionArgs) => unknown;
  subscribe: (args: ExecutionArgs) => unknown;
}

/**
 * graphql-ws answers a message only a server may send (next, error, connection_ack) with an
 * exception, which its ws adapter turns into close code 4500 and a logged stack trace; an id
 * too long for a close reason makes `ws` throw. Both are the client's fault: close with 4400.
 * A frame over the cap, or broken framing, is the client's fault too; ws closes the socket
 * itself (1009, 1002), and graphql-ws would log it as an internal error and close with 1011.
 */
function screenMessages(socket: WebSocket, logger: Logger): void {
  const emit = socket.emit.bind(socket) as (event: string, ...args: unknown[]) => boolean;
  socket.emit = ((event: string, ...args: unknown[]) => {
    if (event === 'error' && /^WS_ERR_/.test(String((args[0] as { code?: unknown })?.code))) {
      logger.debug({ err: args[0] }, 'WebSocket closed for a protocol error of the client');
      return true;
    }
    if (event !== 'message') return emit(event, ...args);
    if (!acceptableFromClient(args[0] as RawData)) {
      socket.close(4400, 'Invalid message received');
      return true;
    }
    return emit(event, ...args);
  }) as typeof socket.emit;
}

function acceptableFromClient(data: RawData): boolean {
  let message: unknown;
  try {
    message = JSON.parse(String(data));
  } catch {
    return true; // not JSON: graphql-ws itself closes with 4400
  }
  if (!message || typeof message !== 'object') return true;
  const { type, id } = message as { type?: unknown; id?: unknown };
  if (type === 'next' || type === 'error' || type === 'connection_ack') return false;
  return typeof id !== 'string' || id.length <= MAX_OPERATION_ID;
}
