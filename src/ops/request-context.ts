import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';

/** What every log line written while serving one request (or one WebSocket message) carries. */
export interface RequestContext {
  requestId: string;
}

const storage = new AsyncLocalStorage<RequestContext>();

/** The request being served, if any (read by the logger's mixin and by error masking). */
export function currentRequest(): RequestContext | undefined {
  return storage.getStore();
}

/** Run `fn` (and everything it awaits) as part of the request `context`. */
export function runInRequest<T>(context: RequestContext, fn: () => T): T {
  return storage.run(context, fn);
}

const CLIENT_ID = /^[\w.:-]{1,128}$/;

/**
 * The id of a request: the caller's `X-Request-Id` when it is a sane token (so a proxy's or
 * client's id follows the request through), else a new UUID.
 */
export function requestIdFrom(header: string | string[] | undefined): string {
  const given = Array.isArray(header) ? header[0] : header;
  return given && CLIENT_ID.test(given) ? given : randomUUID();
}
