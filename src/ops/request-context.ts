import { randomUUID } from 'node:crypto';

/**
 * Request ids, carried explicitly: in the GraphQL context (`requestId`), and on the errors an
 * operation meets, so the line that logs one names its request. Not AsyncLocalStorage: on Node
 * 20 it installs promise hooks that every promise of every request and every subscriber's event
 * pays for (issue 18 measured 11 % of all-events fan-out's CPU per message).
 */

const CLIENT_ID = /^[\w.:-]{1,128}$/;

/**
 * The id of a request: the caller's `X-Request-Id` when it is a sane token (so a proxy's or
 * client's id follows the request through), else a new UUID.
 */
export function requestIdFrom(header: string | string[] | undefined): string {
  const given = Array.isArray(header) ? header[0] : header;
  return given && CLIENT_ID.test(given) ? given : randomUUID();
}

/** The request id an operation's context (or a transport's initial context) carries, if any. */
export function requestIdIn(context: unknown): string | undefined {
  return (context as { requestId?: string } | null | undefined)?.requestId;
}

const requestOfError = new WeakMap<object, string>();

/** An error and the error it wraps (a GraphQLError's originalError), those that are objects. */
function selfAndOriginal(error: unknown): object[] {
  if (typeof error !== 'object' || error === null) return [];
  const original = (error as { originalError?: unknown }).originalError;
  return typeof original === 'object' && original !== null ? [error, original] : [error];
}

/** Remember that `error` (and the error it wraps) was met serving `requestId`; first one wins. */
export function noteRequestOf(error: unknown, requestId: string | undefined): void {
  if (requestId === undefined) return;
  for (const each of selfAndOriginal(error))
    if (!requestOfError.has(each)) requestOfError.set(each, requestId);
}

/** The request an error was met serving (noteRequestOf), or the one of the error it wraps. */
export function requestIdOfError(error: unknown): string | undefined {
  for (const each of selfAndOriginal(error)) {
    const requestId = requestOfError.get(each);
    if (requestId !== undefined) return requestId;
  }
  return undefined;
}
