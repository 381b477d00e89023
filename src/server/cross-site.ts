import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendError } from './respond.js';

/**
 * What a web page on another origin may do: nothing, unless its origin is configured. CSRF (a
 * form POST), CORS (reading answers) and the WebSocket handshake are each checked here.
 */

/**
 * Content types a web page's form (or a no-CORS fetch) can POST without a preflight, which yoga
 * would otherwise run (text/plain and multipart/form-data it refuses with 415 by itself).
 */
const SIMPLE_CONTENT_TYPES = new Set(['', 'application/x-www-form-urlencoded']);

/**
 * CSRF: refuse (415) a POST that any web page could send without a CORS preflight (a form, or no
 * content type), unless it carries a header only a preflighted request can
 * (`GraphQL-Require-Preflight`). Clients send application/json. GET never mutates (yoga refuses
 * mutations over GET). Answers whether the request was refused.
 */
export function refuseCrossSiteForm(req: IncomingMessage, res: ServerResponse): boolean {
  if (req.method !== 'POST') return false;
  const type = (req.headers['content-type'] ?? '').split(';', 1)[0]!.trim().toLowerCase();
  if (!SIMPLE_CONTENT_TYPES.has(type)) return false;
  if (req.headers['graphql-require-preflight'] !== undefined) return false;
  sendError(
    res,
    415,
    'send the operation as application/json: a form POST could come from any web page, ' +
      'so it is refused (or add a GraphQL-Require-Preflight header)',
    { code: 'BAD_REQUEST' },
    { connection: 'close' },
  );
  return true;
}

/** Whether a browser page of `origin` may use this service reached at `host`. */
export function originAllowed(
  origin: string,
  host: string | undefined,
  allowed: readonly string[],
): boolean {
  if (allowed.includes('*') || allowed.includes(origin)) return true;
  try {
    return host !== undefined && new URL(origin).host === host;
  } catch {
    return false; // "null" (a sandboxed frame, a file) or garbage
  }
}

/** yoga's CORS options for a request: headers for a configured origin only. */
export function corsFor(origin: string | null, allowed: readonly string[]) {
  if (origin === null || !(allowed.includes('*') || allowed.includes(origin))) return false;
  return {
    origin: [origin],
    credentials: false,
    methods: ['GET', 'POST'],
    allowedHeaders: ['authorization', 'content-type', 'accept', 'x-request-id', 'last-event-id'],
    exposedHeaders: ['x-request-id', 'retry-after'],
    maxAge: 600,
  };
}
