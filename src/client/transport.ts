import { RunstateError, RunstateUnavailableError } from './errors.js';

export interface RetryOptions {
  /** Tries after the first (default 6). */
  attempts?: number;
  /** First backoff (default 100 ms), doubled each try, with jitter. */
  baseDelayMs?: number;
  /** Longest backoff (default 5,000 ms). */
  maxDelayMs?: number;
  /** How long one try may wait for its answer (default 30,000 ms). */
  timeoutMs?: number;
}

export interface Transport {
  /**
   * POST an operation; answers its data, retrying with backoff and the same body.
   *
   * `repeatable` (the default) says sending it twice changes nothing more than once (a query, or
   * a mutation with an idempotency key): then any failure to get an answer is retried (network
   * errors, timeouts, 429, 502–504, SERVICE_UNAVAILABLE from a database fault), with the same
   * body and so the same idempotency key. Otherwise only failures where the server surely did
   * not run it are: a refused connection, 429, and 503 SERVER_STOPPING (a draining instance).
   */
  request<T>(
    query: string,
    variables?: Record<string, unknown>,
    options?: RequestOptions,
  ): Promise<T>;
}

export interface RequestOptions {
  /** Whether sending it twice is harmless (default true). */
  repeatable?: boolean;
  /** Tries after the first (default: the client's). */
  retries?: number;
  /** How long one try may wait (default: the client's). */
  timeoutMs?: number;
}

const RETRIED_STATUSES = new Set([429, 502, 503, 504]);

function connectionRefused(error: unknown): boolean {
  const cause = (error as { cause?: { code?: string } }).cause;
  return cause?.code === 'ECONNREFUSED';
}

export function createTransport(options: {
  url: string;
  token?: string;
  fetch?: typeof fetch;
  retry?: RetryOptions;
}): Transport {
  const send = options.fetch ?? fetch;
  const attempts = options.retry?.attempts ?? 6;
  const base = options.retry?.baseDelayMs ?? 100;
  const max = options.retry?.maxDelayMs ?? 5_000;
  const timeoutMs = options.retry?.timeoutMs ?? 30_000;
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    accept: 'application/graphql-response+json, application/json',
    ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
  };

  return {
    async request<T>(
      query: string,
      variables?: Record<string, unknown>,
      requestOptions: RequestOptions = {},
    ): Promise<T> {
      const repeatable = requestOptions.repeatable ?? true;
      const tries = requestOptions.retries ?? attempts;
      const timeout = requestOptions.timeoutMs ?? timeoutMs;
      const body = JSON.stringify({ query, variables });
      let lastProblem: unknown;
      for (let attempt = 0; attempt <= tries; attempt++) {
        if (attempt > 0) await sleep(backoff(attempt, base, max, lastProblem));
        let response: Response;
        try {
          response = await send(options.url, {
            method: 'POST',
            headers,
            body,
            signal: AbortSignal.timeout(timeout),
          });
        } catch (error) {
          lastProblem = error; // connection refused, reset, timed out, or the answer lost
          if (repeatable || connectionRefused(error)) continue;
          throw new RunstateUnavailableError(
            `no answer from runstate at ${options.url}; the operation may or may not have run`,
            { cause: error },
          );
        }
        let payload: { data?: T | null; errors?: GraphQLErrorLike[] } | undefined;
        try {
          payload = (await response.json()) as typeof payload;
        } catch (error) {
          lastProblem = error; // the connection dropped mid-answer
          if (repeatable && (response.ok || RETRIED_STATUSES.has(response.status))) continue;
          if (response.ok)
            throw new RunstateUnavailableError(
              `the answer from runstate at ${options.url} was cut off; the operation may or may not have run`,
              { cause: error },
            );
          throw new RunstateError(`HTTP ${response.status}`, 'HTTP_ERROR', {
            status: response.status,
          });
        }
        const first = payload?.errors?.[0];
        const codes = (payload?.errors ?? []).map((e) => e.extensions?.['code']);
        // SERVICE_UNAVAILABLE: the database went away, maybe after the operation committed.
        const maybeRan = codes.includes('SERVICE_UNAVAILABLE');
        // Surely not run: a 429, or a draining instance's 503 (SERVER_STOPPING and nothing else).
        const notRun =
          response.status === 429 ||
          (response.status === 503 &&
            codes.length > 0 &&
            codes.every((code) => code === 'SERVER_STOPPING'));
        const retried = repeatable
          ? RETRIED_STATUSES.has(response.status) || maybeRan
          : notRun && !maybeRan;
        if (retried) {
          lastProblem = new RetryAfter(retryAfterMs(response, payload));
          continue;
        }
        if (maybeRan) {
          throw new RunstateUnavailableError(
            `the database behind ${options.url} went away; the operation may or may not have run`,
            { cause: first },
          );
        }
        if (first) {
          const extensions = first.extensions ?? {};
          throw new RunstateError(
            first.message,
            String(extensions['code'] ?? 'UNKNOWN'),
            extensions,
          );
        }
        if (payload?.data == null) throw new RunstateError(`HTTP ${response.status}`, 'HTTP_ERROR');
        return payload.data;
      }
      throw new RunstateUnavailableError(
        `runstate at ${options.url} did not answer after ${tries + 1} tries`,
        { cause: lastProblem },
      );
    },
  };
}

interface GraphQLErrorLike {
  message: string;
  extensions?: Record<string, unknown>;
}

/** A 429 or 503: wait what the server asked for, if it said. */
class RetryAfter {
  constructor(readonly ms: number | null) {}
}

function retryAfterMs(
  response: Response,
  payload: { errors?: GraphQLErrorLike[] } | undefined,
): number | null {
  const inBody = payload?.errors?.[0]?.extensions?.['retryAfter'];
  if (typeof inBody === 'number') return inBody * 1000;
  const header = Number(response.headers.get('retry-after'));
  return Number.isFinite(header) && response.headers.has('retry-after') ? header * 1000 : null;
}

export function backoff(attempt: number, base: number, max: number, problem?: unknown): number {
  if (problem instanceof RetryAfter && problem.ms) return Math.min(problem.ms, max);
  const ceiling = Math.min(max, base * 2 ** (attempt - 1));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
