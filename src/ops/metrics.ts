import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Where a transition request ended up, as counted by `runstate_transitions_total`. */
export interface CountableOutcome {
  kind: 'accepted' | 'illegal' | 'conflict' | 'notFound';
}

/** Outcome kind → the `reason` label of a refused transition. */
const REFUSAL_REASON: Record<Exclude<CountableOutcome['kind'], 'accepted'>, string> = {
  illegal: 'illegal_transition',
  conflict: 'conflict',
  notFound: 'run_not_found',
};

/** Paths with their own `route` label; everything else is `other` (labels stay bounded). */
const ROUTES = new Set(['/health', '/ready', '/metrics']);

export interface MetricsOptions {
  graphqlPath: string;
  /** Open subscriptions on this instance, read at scrape time. */
  activeSubscriptions: () => number;
  /** Open WebSocket connections on this instance, read at scrape time. */
  openSockets: () => number;
  /** How far this instance's change-log tail is, read at scrape time. */
  tailPosition: () => number;
  /** How long the tail has waited for open writers of status changes, in seconds (0: it does not). */
  tailWaitSeconds: () => number;
}

/**
 * Node's process metrics (CPU, memory, event-loop delay, GC), collected once per process: each
 * collection keeps an event-loop monitor and a GC observer running for good, so one per app
 * would pile up where several apps share a process.
 */
let processRegistry: Registry | undefined;
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/**
 * This instance's Prometheus metrics, in a registry of its own (several apps can share a
 * process, as the tests do), exposed together with the process's. Labels take only bounded
 * values: routes, schema field names, outcome types and error codes, never ids or client-chosen
 * names.
 */
export function createMetrics(options: MetricsOptions) {
  const registry = new Registry();

  const httpDuration = new Histogram({
    name: 'runstate_http_request_duration_seconds',
    help: 'HTTP requests by route, method and status, from arrival to the end of the response (SSE: of the stream).',
    labelNames: ['route', 'method', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const resolverDuration = new Histogram({
    name: 'runstate_resolver_duration_seconds',
    help: 'Root Query and Mutation resolvers, by field.',
    labelNames: ['type', 'field'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const graphqlErrors = new Counter({
    name: 'runstate_graphql_errors_total',
    help: 'Errors in GraphQL results, by extensions.code.',
    labelNames: ['code'] as const,
    registers: [registry],
  });
  const transitions = new Counter({
    name: 'runstate_transitions_total',
    help: 'Requested status changes (transitionRun(s), stopRun, retryRun, resumeRun) by result and refusal reason.',
    labelNames: ['result', 'reason'] as const,
    registers: [registry],
  });
  const fanoutLag = new Histogram({
    name: 'runstate_fanout_lag_seconds',
    help: "From a status change's timestamp to its publication to this instance's subscribers.",
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  new Gauge({
    name: 'runstate_active_subscriptions',
    help: 'Open subscriptions on this instance (WebSocket and SSE).',
    registers: [registry],
    collect() {
      this.set(options.activeSubscriptions());
    },
  });
  new Gauge({
    name: 'runstate_websocket_connections',
    help: 'Open WebSocket connections on this instance.',
    registers: [registry],
    collect() {
      this.set(options.openSockets());
    },
  });
  new Gauge({
    name: 'runstate_change_log_position',
    help: 'Id of the last status change this instance has published.',
    registers: [registry],
    collect() {
      this.set(options.tailPosition());
    },
  });
  new Gauge({
    name: 'runstate_change_log_wait_seconds',
    help: 'How long live delivery on this instance has waited for open transactions that wrote status changes (0: it does not wait).',
    registers: [registry],
    collect() {
      this.set(options.tailWaitSeconds());
    },
  });

  const exposed = Registry.merge([processMetrics(), registry]);

  // A labelled child per label values, looked up once: prom-client hashes the labels object of
  // every observe(), a cost paid on every request.
  const children = new Map<string, unknown>();
  function childOf<T>(key: string, make: () => T): T {
    let child = children.get(key) as T | undefined;
    if (child === undefined) children.set(key, (child = make()));
    return child;
  }

  return {
    /** The `route` label of a request path. */
    routeOf(path: string): string {
      if (path === options.graphqlPath) return 'graphql';
      return ROUTES.has(path) ? path.slice(1) : 'other';
    },
    observeRequest(route: string, method: string, status: number, seconds: number): void {
      childOf(`http ${route} ${method} ${status}`, () =>
        httpDuration.labels(route, method, String(status)),
      ).observe(seconds);
    },
    observeResolver(type: string, field: string, seconds: number): void {
      childOf(`resolver ${type} ${field}`, () => resolverDuration.labels(type, field)).observe(
        seconds,
      );
    },
    countError(code: string): void {
      graphqlErrors.inc({ code });
    },
    countTransitions(outcomes: readonly CountableOutcome[]): void {
      for (const { kind } of outcomes) {
        const reason = kind === 'accepted' ? '' : REFUSAL_REASON[kind];
        childOf(`transitions ${reason}`, () =>
          transitions.labels(reason === '' ? 'accepted' : 'refused', reason),
        ).inc();
      }
    },
    observeFanoutLag(seconds: number): void {
      fanoutLag.observe(Math.max(0, seconds));
    },
    /** The exposition text and its content type. */
    async render(): Promise<{ contentType: string; body: string }> {
      return { contentType: exposed.contentType, body: await exposed.metrics() };
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
