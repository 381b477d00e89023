import { GraphQLError } from 'graphql';
import { DomainError, type DomainErrorKind } from '../errors.js';

/** Each kind of domain error on the wire: its `extensions.code`, and its HTTP status if any. */
const WIRE: Record<
  DomainErrorKind,
  { code: string; http?: (details: Record<string, unknown>) => Record<string, unknown> }
> = {
  invalidInput: { code: 'BAD_USER_INPUT' },
  notFound: { code: 'NOT_FOUND' },
  staleAttempt: { code: 'STALE_ATTEMPT' },
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
