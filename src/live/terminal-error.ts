import { GraphQLError } from 'graphql';

/**
 * Helpers for subscription sources.
 *
 * Two traps they avoid:
 * - A source that throws mid-stream tears down the client's whole graphql-ws socket (an internal
 *   error). Instead a source yields a TerminalError marker and ends; the field's `resolve` throws
 *   it, so the client gets one result carrying the error, then `complete`.
 * - `return()` on an async generator waits until the generator reaches its next `yield`. One
 *   parked in `await source.next()` would never see it, and a closed subscription would stay
 *   registered forever. These iterators end the underlying hub subscription at once.
 */
export interface TerminalError {
  readonly terminalError: GraphQLError;
}

export function isTerminalError(value: unknown): value is TerminalError {
  return typeof value === 'object' && value !== null && 'terminalError' in value;
}

/** The `resolve` of a subscription field: the event itself, or the terminal error thrown. */
export function resolveEvent<T>(payload: T | TerminalError): T {
  if (isTerminalError(payload)) throw payload.terminalError;
  return payload;
}

/**
 * Events of `source` that pass `keep`; a GraphQLError thrown by the source becomes a final
 * TerminalError. `return()` ends the source immediately, even while a `next()` is pending.
 */
export function filterEvents<T>(
  source: AsyncIterator<T>,
  keep: (event: T) => boolean = () => true,
): AsyncIterableIterator<T | TerminalError> {
  let finished = false;
  const done = (): IteratorResult<T | TerminalError> => ({ value: undefined, done: true });
  const iterator: AsyncIterableIterator<T | TerminalError> = {
    async next() {
      while (!finished) {
        let result: IteratorResult<T>;
        try {
          result = await source.next();
        } catch (error) {
          finished = true;
          if (error instanceof GraphQLError)
            return { value: { terminalError: error }, done: false };
          throw error;
        }
        if (result.done) break;
        if (keep(result.value)) return { value: result.value, done: false };
      }
      finished = true;
      return done();
    },
    async return() {
      finished = true;
      await source.return?.();
      return done();
    },
    async throw(error?: unknown) {
      finished = true;
      await source.return?.();
      throw error;
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}

/**
 * End `iterator` when the HTTP request behind it is aborted (SSE). Yoga returns the iterators it
 * received, but not one created while the client went away during an await in `subscribe`.
 */
export function endWithRequest<T>(
  iterator: AsyncIterableIterator<T>,
  request: Request | undefined,
): AsyncIterableIterator<T> {
  const signal = request?.signal;
  if (!signal) return iterator;
  if (signal.aborted) void iterator.return?.();
  else signal.addEventListener('abort', () => void iterator.return?.(), { once: true });
  return iterator;
}
