import { readFileSync } from 'node:fs';
import {
  createSchema,
  createYoga,
  maskError,
  type Plugin,
  type YogaServerInstance,
} from 'graphql-yoga';
import type { AuthService } from '../auth/auth-service.js';
import { bearerSecret, connectionParamsSecret } from '../auth/secrets.js';
import type { Db } from '../db/client.js';
import { isDatabaseUnavailable } from '../db/unavailable.js';
import type { ErrorNaming } from '../graphql/domain-errors.js';
import { createLoaders, type AppServices, type GraphQLContext } from '../graphql/context.js';
import { useCompiledQueries } from '../graphql/compiled-queries.js';
import { useInputErrorCodes } from '../graphql/input-errors.js';
import { instrumentResolvers, useErrorMetrics } from '../graphql/instrument.js';
import { useParserLimits } from '../graphql/parser-limits.js';
import { useQueryLimits } from '../graphql/query-limits.js';
import { useTracing } from '../graphql/tracing.js';
import { resolvers } from '../graphql/resolvers.js';
import { useSharedSubscriptionExecution } from '../graphql/shared-subscription-execution.js';
import type { Limits } from '../limits/limits.js';
import type { Logger } from '../logger.js';
import type { Inflight } from '../ops/inflight.js';
import type { Metrics } from '../ops/metrics.js';
import { fromPackageRoot } from '../package-root.js';
import { noteRequestOf, requestIdOfError } from '../ops/request-context.js';
import { useRequestIdsOnErrors } from '../graphql/request-ids.js';
import { corsFor } from './cross-site.js';
import { useSingleConnectionSSE } from './graphql-sse.js';
import { GRAPHIQL_OPTIONS, renderGraphiQLPage, useGraphiQLHeaders } from './graphiql.js';

const SCHEMA_PATH = fromPackageRoot('schema.graphql');

/** What each transport hands yoga with a request (or a WebSocket operation) besides it. */
export interface ServerContext {
  /** The id the logs know the request by (ops/request-context.ts). */
  requestId?: string;
}

export type RunstateYoga = YogaServerInstance<ServerContext, GraphQLContext> & {
  /**
   * What yoga makes of an error thrown out of an operation (a syntax error, a hook's): masked as
   * every answer's errors are (a bug: "Unexpected error."; a database away: a retryable 503), and
   * logged when masked. For the transports that run operations without yoga's adapter.
   */
  maskAndLog(error: unknown): Error;
};

/**
 * GraphQL over HTTP and SSE: the schema with its resolvers, authentication in the context, the
 * limits, error codes and masking, and the drain's count of executing operations. graphql-ws runs
 * through the same envelop (websocket.ts).
 */
export function createYogaServer(deps: {
  services: AppServices;
  auth: AuthService;
  db: Db;
  metrics: Metrics;
  logger: Logger;
  limits: Limits;
  inflight: Inflight;
  graphqlPath: string;
  graphiql: boolean;
  corsOrigins: readonly string[];
  /** A span per operation (OpenTelemetry; ops/tracing.ts). */
  tracing?: boolean;
  /** How errors reach clients (graphql/domain-errors.ts), shared with the WebSocket path. */
  nameError: ErrorNaming;
}): RunstateYoga {
  const { services, auth, logger, limits, inflight } = deps;
  // Unexpected errors (bugs) become "Unexpected error." with no stack or SQL; a database that is
  // away becomes a retryable 503 SERVICE_UNAVAILABLE.
  const maskUnexpected = (error: unknown, message: string, isDev?: boolean) =>
    deps.nameError(error) ?? maskError(error, message, isDev);
  // A database that is away was logged already (as a warning) where it became a 503.
  const logError = (...args: unknown[]) =>
    isDatabaseUnavailable(args[0])
      ? undefined
      : logger.error(
          { err: args[0], requestId: requestIdOfError(args[0]) },
          args.slice(1).map(String).join(' '),
        );
  const maskAndLog = (error: unknown) => {
    const masked = maskUnexpected(error, 'Unexpected error.', false);
    if (masked !== error) logError(error);
    return masked;
  };
  const yoga = createYoga<ServerContext, GraphQLContext>({
    schema: createSchema<GraphQLContext>({
      typeDefs: readFileSync(SCHEMA_PATH, 'utf8'),
      resolvers: instrumentResolvers(resolvers, deps.metrics) as never,
    }),
    graphqlEndpoint: deps.graphqlPath,
    // Served with its files from runstate itself, under a strict CSP (graphiql.ts).
    graphiql: deps.graphiql ? GRAPHIQL_OPTIONS : false,
    renderGraphiQL: renderGraphiQLPage,
    maskedErrors: { isDev: false, maskError: maskUnexpected },
    // Browsers may read answers only on the service's own origin and those configured.
    cors: (request) => corsFor(request.headers.get('origin'), deps.corsOrigins),
    landingPage: false,
    // No file uploads: a multipart/form-data body is refused like any unsupported content type.
    multipart: false,
    logging: {
      debug: (...args) => logger.debug(args.map(String).join(' ')),
      info: (...args) => logger.info(args.map(String).join(' ')),
      warn: (...args) => logger.warn(args.map(String).join(' ')),
      error: logError,
    },
    // Every operation is authenticated: HTTP and SSE by their Authorization header, WebSocket
    // operations by the connection's connectionParams (checked again per operation, so a
    // revoked token cannot start anything new on a socket it opened earlier).
    // The request id comes in the server context (http.ts, graphql-post.ts, websocket.ts); an
    // error met here is logged under it.
    context: async (initial) => {
      const { request, connectionParams, requestId } = initial as {
        request?: Request;
        connectionParams?: unknown;
        requestId?: string;
      };
      const secret = request
        ? bearerSecret(request.headers.get('authorization'))
        : connectionParamsSecret(connectionParams);
      try {
        const principal = await auth.authenticate(secret);
        return { ...services, principal, requestId, loaders: createLoaders(deps.db) };
      } catch (error) {
        noteRequestOf(error, requestId);
        throw error;
      }
    },
    plugins: [
      ...(deps.tracing ? [useTracing()] : []),
      // Before yoga's masking (it comes after every plugin here), which logs what it masks.
      useRequestIdsOnErrors(),
      useGraphiQLHeaders(),
      useParserLimits({ maxTokens: limits.maxTokens }) as Plugin,
      ...useQueryLimits(limits),
      useSingleConnectionSSE({ graphqlPath: deps.graphqlPath, auth }),
      useInputErrorCodes() as Plugin,
      useErrorMetrics(deps.metrics),
      // Before the drain's count below, which must wrap whichever executor runs.
      useCompiledQueries((errors, requestId) =>
        logger.warn({ errors, requestId }, 'a query could not be compiled; it runs uncompiled'),
      ),
      // Queries and mutations (over any transport) a drain waits for, counted around the
      // execution itself so one that throws is uncounted too.
      {
        onExecute: ({ executeFn, setExecuteFn }) => {
          setExecuteFn((args) => {
            inflight.begin();
            try {
              return Promise.resolve(executeFn(args)).finally(() => inflight.end());
            } catch (error) {
              inflight.end();
              throw error;
            }
          });
        },
      } satisfies Plugin,
      // Last of the plugins that hook subscriptions: it answers their streams, masking their
      // events' errors as yoga masks (and logs) the rest, so no hook after it sees them.
      useSharedSubscriptionExecution({ mask: maskAndLog }),
    ],
  });
  return Object.assign(yoga, { maskAndLog });
}
