import type { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { CountableOutcome, Metrics } from '../ops/metrics.js';

/** Mutations whose answers are TransitionResults, counted by outcome. */
const TRANSITION_FIELDS = new Set([
  'transitionRun',
  'transitionRuns',
  'stopRun',
  'retryRun',
  'resumeRun',
]);

type Resolver = (...args: unknown[]) => unknown;
type ResolverMap = Record<string, Record<string, unknown>>;

/**
 * The resolvers with each root Query and Mutation field timed (`runstate_resolver_duration_seconds`)
 * and transition answers counted (`runstate_transitions_total`). Nested fields are not timed:
 * they run per item, often per subscriber event, where a clock read per call would show.
 */
export function instrumentResolvers<T extends object>(resolvers: T, metrics: Metrics): T {
  const copy: ResolverMap = { ...(resolvers as ResolverMap) };
  for (const type of ['Query', 'Mutation']) {
    const fields = copy[type];
    if (!fields) continue;
    copy[type] = Object.fromEntries(
      Object.entries(fields).map(([field, resolve]) => [
        field,
        typeof resolve === 'function' ? timed(type, field, resolve as Resolver, metrics) : resolve,
      ]),
    );
  }
  return copy as T;
}

function timed(type: string, field: string, resolve: Resolver, metrics: Metrics): Resolver {
  const countsTransitions = type === 'Mutation' && TRANSITION_FIELDS.has(field);
  return async (...args) => {
    const started = performance.now();
    try {
      const result = await resolve(...args);
      if (countsTransitions)
        metrics.countTransitions((Array.isArray(result) ? result : [result]) as CountableOutcome[]);
      return result;
    } finally {
      metrics.observeResolver(type, field, (performance.now() - started) / 1000);
    }
  };
}

/**
 * Counts the errors of every single result by code (`runstate_graphql_errors_total`): parse,
 * validation and limit refusals as well as execution errors. Subscription streams are not
 * counted event by event.
 */
export function useErrorMetrics(metrics: Metrics): Plugin {
  return { onResultProcess: ({ result }) => countResultErrors(metrics, result) };
}

/** Count the errors of a result (or a batch of them) by code: useErrorMetrics' count. */
export function countResultErrors(metrics: Metrics, result: unknown): void {
  for (const single of Array.isArray(result) ? result : [result]) {
    const errors = (single as { errors?: readonly GraphQLError[] } | null)?.errors;
    if (!Array.isArray(errors)) continue;
    for (const error of errors)
      metrics.countError(String(error.extensions?.['code'] ?? 'INTERNAL_SERVER_ERROR'));
  }
}
