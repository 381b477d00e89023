import { createClient, type Client } from 'graphql-ws';
import { RunstateError } from './errors.js';
import { backoff, sleep, type RetryOptions } from './transport.js';
import type { Dialect, StatusChange, StatusChangeFilter } from './types.js';

/** A change's fields; `nativeTo` is in the operation's `$dialect: Dialect` (null: the run's). */
export const STATUS_CHANGE_FIELDS = `cursor runId from to nativeTo(dialect: $dialect) version reason
  message forced actor at run { project name }`;

/** Subscription endings after which resuming from the last cursor loses nothing. */
const RESUMABLE = new Set(['SERVER_STOPPING', 'SUBSCRIPTION_OVERFLOW', 'SERVICE_UNAVAILABLE']);

/** Close codes after which a new connection cannot do better (bad request, bad token). */
const FATAL_CLOSE = new Set([4400, 4401, 4403, 4406, 4409, 4429, 4500]);

/** A live stream of status changes that survives dropped connections on its own. */
export interface StatusChangeWatch extends AsyncIterableIterator<StatusChange> {
  /** The last change's cursor: where the watch resumes (pass it as `after` next time). */
  readonly cursor: string | null;
}

export interface WatchOptions {
  /** Replay every matching change after this cursor first. */
  after?: string | null;
  /** The dialect of each change's `nativeTo` (default: its run's own). */
  dialect?: Dialect | null;
  /** Told each time the connection dropped and the watch is about to resume. */
  onReconnect?: (info: { attempt: number; cursor: string | null; reason: string }) => void;
}

/**
 * `statusChanged(filter, after)` as an async iterator. When the socket drops, the server stops
 * or the subscriber falls too far behind, it subscribes again with `after` = the last cursor it
 * yielded: by the API's contract, nothing is missed and nothing arrives twice. Errors that a
 * new connection cannot fix (a bad filter, a revoked token) end the iteration with a throw.
 */
export function watchStatusChanges(
  options: {
    wsUrl: string;
    token?: string;
    webSocketImpl?: unknown;
    retry?: RetryOptions;
  },
  filter: StatusChangeFilter,
  watchOptions: WatchOptions = {},
): StatusChangeWatch {
  let cursor = watchOptions.after ?? null;
  let stopped = false;
  let current: Client | null = null;
  const maxDelay = options.retry?.maxDelayMs ?? 5_000;
  const base = options.retry?.baseDelayMs ?? 100;

  async function* changes(): AsyncGenerator<StatusChange> {
    let failures = 0;
    while (!stopped) {
      let reason = 'the subscription ended';
      current = createClient({
        url: options.wsUrl,
        webSocketImpl: options.webSocketImpl ?? (await defaultWebSocket()),
        connectionParams: options.token ? { token: options.token } : undefined,
        retryAttempts: 0,
        lazy: true,
      });
      try {
        const results = current.iterate<{ statusChanged: StatusChange }>({
          query: `subscription Watch($filter: StatusChangeFilter, $after: String, $dialect: Dialect) {
            statusChanged(filter: $filter, after: $after) { ${STATUS_CHANGE_FIELDS} } }`,
          variables: { filter, after: cursor, dialect: watchOptions.dialect ?? null },
        });
        for await (const result of results) {
          const error = result.errors?.[0];
          if (error) {
            const code = String(error.extensions?.['code'] ?? 'UNKNOWN');
            if (!RESUMABLE.has(code))
              throw new RunstateError(error.message, code, error.extensions ?? {});
            reason = code;
            break;
          }
          const change = result.data!.statusChanged;
          cursor = change.cursor;
          failures = 0;
          yield change;
        }
      } catch (error) {
        if (error instanceof RunstateError) throw error;
        reason = reasonToResume(error);
      } finally {
        await current.dispose();
        current = null;
      }
      if (stopped) return;
      failures++;
      watchOptions.onReconnect?.({ attempt: failures, cursor, reason });
      await sleep(failures === 1 ? 0 : backoff(failures - 1, base, maxDelay));
    }
  }

  const generator = changes();
  const watch: StatusChangeWatch = {
    get cursor() {
      return cursor;
    },
    next: () => generator.next(),
    async return() {
      stopped = true;
      await current?.dispose();
      return generator.return(undefined);
    },
    throw: (error?: unknown) => generator.throw(error),
    [Symbol.asyncIterator]() {
      return watch;
    },
  };
  return watch;
}

/** Node 22+ and browsers have WebSocket; on Node 20 the `ws` package stands in. */
async function defaultWebSocket(): Promise<unknown> {
  const global = (globalThis as { WebSocket?: unknown }).WebSocket;
  if (global) return global;
  const ws = await import('ws');
  return ws.WebSocket;
}

/**
 * Why a subscription attempt failed, when resuming can help; throws a RunstateError when it
 * cannot (a bad filter, a refused token).
 */
function reasonToResume(error: unknown): string {
  // Refused before it started (validation, limits, a draining server): an array of errors.
  if (Array.isArray(error)) {
    const first = (error[0] ?? {}) as { message?: string; extensions?: Record<string, unknown> };
    const code = String(first.extensions?.['code'] ?? 'UNKNOWN');
    if (!RESUMABLE.has(code))
      throw new RunstateError(first.message ?? code, code, first.extensions ?? {});
    return code;
  }
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'number' && FATAL_CLOSE.has(code)) {
    const text = (error as { reason?: string }).reason || `closed with ${code}`;
    throw new RunstateError(text, code === 4403 ? 'FORBIDDEN' : `CLOSE_${code}`);
  }
  return typeof code === 'number' ? `socket closed (${code})` : String(error);
}
