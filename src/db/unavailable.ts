/**
 * Whether an error means "the database is not there right now" rather than "this request is
 * wrong": such errors become a retryable 503 SERVICE_UNAVAILABLE instead of a masked 500.
 */

/** postgres.js's own codes for a connection that closed, was ended, or never opened. */
const DRIVER_CODES = new Set([
  'CONNECTION_CLOSED',
  'CONNECTION_DESTROYED',
  'CONNECTION_ENDED',
  'CONNECT_TIMEOUT',
]);

/** Node's socket errors on the way to the server. */
const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * SQLSTATEs of a server that is going away or not ready: class 08 (connection exception),
 * 57P01-57P03 (shut down by an administrator or a crash, cannot connect now), 53300 (too many
 * connections), and 25006 (read-only: a standby reached during a failover).
 */
function unavailableSqlState(code: string): boolean {
  return (
    code.startsWith('08') ||
    code === '57P01' ||
    code === '57P02' ||
    code === '57P03' ||
    code === '53300' ||
    code === '25006'
  );
}

/** Looks through wrappers (drizzle's DrizzleQueryError, GraphQL's originalError) for the cause. */
export function isDatabaseUnavailable(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 6 && current && typeof current === 'object'; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') {
      if (DRIVER_CODES.has(code) || SOCKET_CODES.has(code)) return true;
      if (/^[0-9A-Z]{5}$/.test(code) && unavailableSqlState(code)) return true;
    }
    const next =
      (current as { originalError?: unknown }).originalError ??
      (current as { cause?: unknown }).cause;
    if (next === current) break;
    current = next;
  }
  return false;
}
