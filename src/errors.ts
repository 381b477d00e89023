import { GraphQLError } from 'graphql';

/**
 * Exceptional outcomes. Expected domain outcomes (an illegal transition, a conflict) are result
 * kinds instead.
 *
 * The domains throw DomainErrors: plain errors with a `kind` and details, which know nothing of
 * GraphQL; graphql/domain-errors.ts maps each kind to its `extensions.code` and HTTP status, on
 * every transport. The errors the transports make themselves (limits, a stopping server, a
 * subscriber's overflow, a revoked token, an unavailable database) are GraphQL errors from the
 * start. Anything else is masked by yoga before it reaches a client.
 */

/** What went wrong, for the GraphQL layer to name. */
export type DomainErrorKind =
  | 'invalidInput'
  | 'notFound'
  | 'staleAttempt'
  | 'revisionConflict'
  | 'cursorExpired'
  | 'unauthenticated'
  | 'forbidden'
  | 'rateLimited';

export abstract class DomainError extends Error {
  abstract readonly kind: DomainErrorKind;
  /** What a client may act on (the field, the id, the attempt, how long to wait). */
  readonly details: Record<string, unknown>;
  constructor(message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = new.target.name;
    this.details = details;
  }
}

/**
 * Malformed input: names the offending field (a path such as `input.progress`), and may say
 * what would have been accepted (`allowed`).
 */
export class BadUserInputError extends DomainError {
  readonly kind = 'invalidInput';
  constructor(field: string, problem: string, more: { allowed?: readonly string[] } = {}) {
    super(`${field}: ${problem}`, { field, ...more });
  }
}

/** The addressed object does not exist (for mutations whose answer is not a result union). */
export class NotFoundError extends DomainError {
  readonly kind = 'notFound';
  constructor(what: string, id: string) {
    super(`${what} ${id} not found`, { id });
  }
}

/** A worker reported for an attempt that is not the run's current one; nothing was recorded. */
export class StaleAttemptError extends DomainError {
  readonly kind = 'staleAttempt';
  constructor(runId: string, actualAttempt: number, attempt: number) {
    super(
      `run ${runId} is at attempt ${actualAttempt}, not ${attempt}: this report was not recorded`,
      { actualAttempt },
    );
  }
}

/**
 * A compare-and-set lost (updateRun's expectedRevision): the run changed since the caller read
 * it; nothing was written. Read it again and decide.
 */
export class RevisionConflictError extends DomainError {
  readonly kind = 'revisionConflict';
  constructor(runId: string, expectedRevision: number, actualRevision: number) {
    super(
      `run ${runId} is at revision ${actualRevision}, not ${expectedRevision}: nothing was written`,
      { expectedRevision, actualRevision },
    );
  }
}

/**
 * A change-log cursor older than what retention kept (RETENTION_DAYS): resuming from it would
 * skip changes that were deleted. Start again from a fresh query (or without `after`).
 */
export class CursorExpiredError extends DomainError {
  readonly kind = 'cursorExpired';
  constructor(field: string) {
    super(
      `${field}: this cursor is older than the change log keeps (RETENTION_DAYS); read the ` +
        'current state and start again without it',
      { field },
    );
  }
}

/** A subscriber fell further behind than its buffer allows; it must resubscribe from its cursor. */
export class SubscriptionOverflowError extends GraphQLError {
  constructor(limit: number) {
    super(
      `subscription closed: more than ${limit} events were waiting for this subscriber; ` +
        'resubscribe with `after` set to the last cursor you received',
      { extensions: { code: 'SUBSCRIPTION_OVERFLOW', limit } },
    );
  }
}

/** The instance is shutting down; the client should resubscribe elsewhere from its cursor. */
export class ServerStoppingError extends GraphQLError {
  constructor() {
    super(
      'subscription closed: this runstate instance is stopping; resubscribe (with `after` set to ' +
        'the last cursor you received) on another instance or once it is back',
      { extensions: { code: 'SERVER_STOPPING' } },
    );
  }
}

/** The PostgreSQL error code of an error, looking through drizzle's wrapping (`.cause`). */
export function getPgErrorCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current && typeof current === 'object'; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** No valid API token came with the request (HTTP 401). */
export class UnauthenticatedError extends DomainError {
  readonly kind = 'unauthenticated';
  constructor(message = 'a valid API token is required: send `Authorization: Bearer <token>`') {
    super(message);
  }
}

/** The token is valid but its role does not allow this. */
export class ForbiddenError extends DomainError {
  readonly kind = 'forbidden';
  constructor(what: string, needed: string) {
    super(`${what} needs a token with role ${needed}`, { requiredRole: needed });
  }
}

/** A configured limit was exceeded; `limit` names it, `max` is its value. */
export class LimitExceededError extends GraphQLError {
  constructor(limit: string, max: number, message: string, httpStatus?: number) {
    super(message, {
      extensions: {
        code: 'LIMIT_EXCEEDED',
        limit,
        max,
        ...(httpStatus ? { http: { status: httpStatus } } : {}),
      },
    });
  }
}

/** Too many mutations from one token; try again after `retryAfter` seconds (HTTP 429). */
export class RateLimitedError extends DomainError {
  readonly kind = 'rateLimited';
  constructor(retryAfterSeconds: number) {
    super(`rate limit exceeded for this token: retry in ${retryAfterSeconds} s`, {
      retryAfter: retryAfterSeconds,
    });
  }
}

/** The token behind a subscription was revoked; its subscriptions end. */
export class TokenRevokedError extends GraphQLError {
  constructor() {
    super('subscription closed: the API token was revoked', {
      extensions: { code: 'TOKEN_REVOKED' },
    });
  }
}

/**
 * The database could not be reached or went away during the request (a restart, a failover, a
 * killed connection): HTTP 503, retry. A mutation that met this may or may not have committed;
 * retry it with the same idempotency key.
 */
export class ServiceUnavailableError extends GraphQLError {
  constructor(retryAfterSeconds = 1) {
    super(
      'the database is unavailable; retry shortly (a mutation may or may not have been applied: ' +
        'send it again with the same idempotency key)',
      {
        extensions: {
          code: 'SERVICE_UNAVAILABLE',
          retryAfter: retryAfterSeconds,
          http: { status: 503, headers: { 'Retry-After': String(retryAfterSeconds) } },
        },
      },
    );
  }
}
