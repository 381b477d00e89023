import { GraphQLError } from 'graphql';
import { isDatabaseUnavailable } from '../db/unavailable.js';
import { DomainError, ServiceUnavailableError, type DomainErrorKind } from '../errors.js';
import type { Logger } from '../logger.js';
import { requestIdOfError } from '../ops/request-context.js';

/** Each kind of domain error on the wire: its `extensions.code`, and its HTTP status if any. */
const WIRE: Record<
  DomainErrorKind,
  { code: string; http?: (details: Record<string, unknown>) => Record<string, unknown> }
> = {
  invalidInput: { code: 'BAD_USER_INPUT' },
  notFound: { code: 'NOT_FOUND' },
  staleAttempt: { code: 'STALE_ATTEMPT' },
  revisionConflict: { code: 'REVISION_CONFLICT' },
  cursorExpired: { code: 'CURSOR_EXPIRED' },
  unauthenticated: {
    code: 'UNAUTHENTICATED',
    http: () => ({ status: 401, headers: { 'WWW-Authenticate': 'Bearer realm="runstate"' } }),
  },
  forbidden: { code: 'FORBIDDEN' },
  rateLimited: {
    code: 'RATE_LIMITED',
    http: (details) => ({ status: 429, headers: { 'Retry-After': String(details['retryAfter']) } }),
  },
};

/** The DomainError behind an error (as graphql-js wraps what a resolver throws), or null. */
export function domainErrorOf(error: unknown): DomainError | null {
  if (error instanceof DomainError) return error;
  const original = error instanceof GraphQLError ? error.originalError : null;
  return original instanceof DomainError ? original : null;
}

/**
 * A domain error as the GraphQL error a client reads: its code and details in `extensions`, and
 * where it happened (`located`: the error graphql-js made of it, with path and locations).
 */
export function toGraphQLError(error: DomainError, located?: GraphQLError): GraphQLError {
  const wire = WIRE[error.kind];
  return new GraphQLError(error.message, {
    nodes: located?.nodes,
    source: located?.source,
    positions: located?.positions,
    path: located?.path,
    extensions: {
      code: wire.code,
      ...error.details,
      ...(wire.http ? { http: wire.http(error.details) } : {}),
    },
  });
}

/**
 * How an error thrown while serving an operation reaches the client, the same on every path
 * (yoga's error masking for HTTP, SSE and WebSocket operations; graphql-ws's context step): a
 * domain error with its code, a database that is away as a retryable 503 SERVICE_UNAVAILABLE
 * (logged at most every 5 s), anything else null (the caller masks it as "Unexpected error.").
 */
export function createErrorNaming(logger: Logger) {
  const unavailable = throttledWarning(logger, 'database unavailable; answered 503', 5000);
  return (error: unknown): GraphQLError | null => {
    const domain = domainErrorOf(error);
    if (domain) return toGraphQLError(domain, error instanceof GraphQLError ? error : undefined);
    if (isDatabaseUnavailable(error)) {
      unavailable.note(error);
      return new ServiceUnavailableError();
    }
    return null;
  };
}

export type ErrorNaming = ReturnType<typeof createErrorNaming>;

/**
 * A warning that may come with every request during an outage: the first is logged with its
 * error, then at most one line per `intervalMs` saying how many more there were.
 */
function throttledWarning(logger: Logger, message: string, intervalMs: number) {
  let last = 0;
  let suppressed = 0;
  return {
    note(error: unknown): void {
      const now = Date.now();
      if (now - last < intervalMs) {
        suppressed++;
        return;
      }
      logger.warn(
        {
          err: error,
          requestId: requestIdOfError(error),
          ...(suppressed > 0 ? { moreSinceLastLine: suppressed } : {}),
        },
        message,
      );
      last = now;
      suppressed = 0;
    },
  };
}
