import { canSeeProject, hasRole, type Principal } from '../auth/principal.js';
import type { RunRow } from '../db/schema.js';
import { NotFoundError } from '../errors.js';
import { getRun } from '../runs/run-queries.js';
import type { ApiRole } from '../db/schema.js';
import {
  ForbiddenError,
  LimitExceededError,
  RateLimitedError,
  TokenRevokedError,
} from '../errors.js';
import type { TerminalError } from '../live/terminal-error.js';
import type { GraphQLContext } from './context.js';

/** Role checks, the mutation rate limit and subscription guards, for resolvers. */

export function requireRole(ctx: GraphQLContext, role: ApiRole, what: string): Principal {
  if (!hasRole(ctx.principal, role)) throw new ForbiddenError(what, role);
  return ctx.principal;
}

/** The rate limit's key: the token, or everyone at once when auth is off. */
function keyOf(principal: Principal): string {
  return principal.tokenId ?? 'anonymous';
}

/**
 * A run mutation: needs WRITE (ADMIN to force, or where `admin` says), and counts against the token's mutation rate
 * (one per mutation field: a batch, bounded in size already, counts once).
 */
export function authorizeWrite(
  ctx: GraphQLContext,
  what: string,
  options: { force?: boolean; admin?: boolean } = {},
): Principal {
  const principal = requireRole(ctx, options.force || options.admin ? 'ADMIN' : 'WRITE', what);
  const retryAfter = ctx.mutationRate.take(keyOf(principal));
  if (retryAfter > 0) throw new RateLimitedError(retryAfter);
  return principal;
}

/**
 * Count a subscription against the token's quota and end it when the token is revoked (with a
 * final TOKEN_REVOKED error). Wraps the source iterator; its `return()` frees the slot.
 */
export function guardSubscription<T>(
  ctx: GraphQLContext,
  source: AsyncIterableIterator<T | TerminalError>,
): AsyncIterableIterator<T | TerminalError> {
  const { principal, auth, subscriptionQuota } = ctx;
  const release = subscriptionQuota.acquire(keyOf(principal));
  if (!release) {
    void source.return?.();
    throw new LimitExceededError(
      'subscriptionsPerToken',
      subscriptionQuota.max,
      `this token has ${subscriptionQuota.max} open subscriptions on this instance, the most ` +
        'allowed: end one first',
    );
  }
  let revoked = false;
  let finished = false;
  const unwatch =
    principal.tokenId == null
      ? () => {}
      : auth.onRevoked(principal.tokenId, () => {
          revoked = true;
          void source.return?.();
        });
  const finish = () => {
    if (finished) return;
    finished = true;
    release();
    unwatch();
  };
  const done = (): IteratorResult<T | TerminalError> => ({ value: undefined, done: true });
  // One reaction per event, not an async function's: every event of every subscriber passes here.
  const onResult = (result: IteratorResult<T | TerminalError>) => {
    if (revoked) {
      finish();
      return { value: { terminalError: new TokenRevokedError() }, done: false };
    }
    if (result.done) finish();
    return result;
  };
  const onError = (error: unknown): never => {
    finish();
    throw error;
  };
  const iterator: AsyncIterableIterator<T | TerminalError> = {
    next() {
      if (finished) return Promise.resolve(done());
      return source.next().then(onResult, onError);
    },
    async return() {
      finish();
      await source.return?.();
      return done();
    },
    async throw(error?: unknown) {
      finish();
      await source.return?.();
      throw error;
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}

/** The runs a loader found that the token may see (a run deleted meanwhile is left out). */
export function visible(principal: Principal, rows: readonly (RunRow | null | Error)[]): RunRow[] {
  return rows.filter(
    (r): r is RunRow => r != null && !(r instanceof Error) && canSeeProject(principal, r.project),
  );
}

/** A run the token may see, or null. */
export async function getVisibleRun(
  db: Parameters<typeof getRun>[0],
  principal: Principal,
  id: string,
): Promise<RunRow | null> {
  const run = await getRun(db, id);
  return run && canSeeProject(principal, run.project) ? run : null;
}

/** A run by id through the operation's loader; NOT_FOUND when it is gone (deleted meanwhile). */
export async function loadRun(loaders: GraphQLContext['loaders'], id: string): Promise<RunRow> {
  const run = await loaders.runById.load(id);
  if (!run) throw new NotFoundError('run', id);
  return run;
}

/** A run by id through the operation's loader, or null when it is gone or the token may not see it. */
export async function loadVisibleRun(
  { loaders, principal }: Pick<GraphQLContext, 'loaders' | 'principal'>,
  id: string | null,
): Promise<RunRow | null> {
  return id == null ? null : (visible(principal, [await loaders.runById.load(id)])[0] ?? null);
}
