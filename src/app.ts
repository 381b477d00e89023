import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getOperationAST, GraphQLError, type ExecutionArgs } from 'graphql';
import { createDashboardAssets } from './dashboard-assets.js';
import { pingDatabase } from './db/client.js';
import { listPendingMigrations } from './db/migrations.js';
import { instrumentResolvers, useErrorMetrics } from './graphql/instrument.js';
import { createInflight } from './ops/inflight.js';
import { createMetrics } from './ops/metrics.js';
import { requestIdFrom, runInRequest } from './ops/request-context.js';
import {
  createSchema,
  createYoga,
  maskError,
  type Plugin,
  type YogaServerInstance,
} from 'graphql-yoga';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { createAuthService } from './auth/auth-service.js';
import { bearerSecret, connectionParamsSecret } from './auth/secrets.js';
import type { Database } from './db/client.js';
import {
  LimitExceededError,
  ServerStoppingError,
  ServiceUnavailableError,
  UnauthenticatedError,
} from './errors.js';
import { isDatabaseUnavailable } from './db/unavailable.js';
import { createEventHub } from './events/event-hub.js';
import { createChangeLogTail, type TailStatus } from './events/change-log-tail.js';
import { createCommitSignal } from './events/commit-signal.js';
import { createRunSignal } from './events/run-signal.js';
import { ALL, type Topics } from './events/topics.js';
import type { RunRow } from './db/schema.js';
import { getRunsByIds } from './runs/run-store.js';
import { createLoaders, type AppServices, type GraphQLContext } from './graphql/context.js';
import { useInputErrorCodes } from './graphql/input-errors.js';
import { useParserLimits } from './graphql/parser-limits.js';
import { useQueryLimits } from './graphql/query-limits.js';
import { useSharedSubscriptionExecution } from './graphql/shared-subscription-execution.js';
import { DEFAULT_LIMITS, type Limits } from './limits/limits.js';
import { createRateLimiter } from './limits/rate-limiter.js';
import { createSubscriptionQuota } from './limits/subscription-quota.js';
import { resolvers } from './graphql/resolvers.js';
import { fromPackageRoot } from './package-root.js';
import type { Logger } from './logger.js';
import { createMeasurementService } from './measurements/measurement-service.js';
import { createReaper } from './runs/reaper.js';
import { createRunService } from './runs/run-service.js';

const SCHEMA_PATH = fromPackageRoot('schema.graphql');

export interface AppOptions {
  database: Database;
  logger: Logger;
  port?: number;
  /** Default 0.0.0.0; with auth off only a loopback address is allowed (default 127.0.0.1). */
  host?: string;
  /**
   * API tokens (default: on). `adminToken` (RUNSTATE_ADMIN_TOKEN) is adopted as an admin token;
   * without it, the first start creates one and `start()` hands its secret back once.
   */
  auth?: { enabled: boolean; adminToken?: string };
  /** Overrides of DEFAULT_LIMITS. */
  limits?: Partial<Limits>;
  graphqlPath?: string;
  graphiql?: boolean;
  /** Events a subscriber may fall behind by before it is closed (default 10,000). */
  subscriberBufferSize?: number;
  /** How often the reaper looks for runs past a deadline (default 1,000 ms). */
  reaperIntervalMs?: number;
  /** Seconds a run may stay STOPPING before the reaper stops it (default 300). */
  stopTimeoutSeconds?: number;
  /** How long stop() waits for in-flight requests and mutations (default 10,000 ms). */
  drainTimeoutMs?: number;
  /** Serve the dashboard at / (default true). */
  dashboard?: boolean;
  /**
   * Origins whose browser pages may call the API (CORS and WebSocket Origin); `*` allows any.
   * Default: none but the service's own.
   */
  corsOrigins?: readonly string[];
}

export interface App {
  readonly yoga: YogaServerInstance<object, GraphQLContext>;
  readonly services: AppServices;
  /**
   * Listen; resolves with the bound address (port 0 picks a free port) and, when this start
   * created the first admin token, its secret (to be shown once).
   */
  start(): Promise<{ port: number; url: string; wsUrl: string; createdAdminToken: string | null }>;
  /**
   * Drain and stop: /ready answers 503 and new requests and sockets are refused (503, with
   * Connection: close) while in-flight requests and mutations finish (up to drainTimeoutMs);
   * then it stops listening, subscriptions end with SERVER_STOPPING and WebSockets close with
   * 1012 (Service Restart), which tells graphql-ws clients to reconnect (to another instance).
   * Does not close the database.
   */
  stop(): Promise<void>;
}

/** Build the HTTP + SSE (yoga) and WebSocket (graphql-ws) service over one database. */
export function buildApp(options: AppOptions): App {
  const { database, logger } = options;
  const graphqlPath = options.graphqlPath ?? '/graphql';
  const limits: Limits = { ...DEFAULT_LIMITS, ...options.limits };
  const authEnabled = options.auth?.enabled ?? true;
  const host = options.host ?? (authEnabled ? '0.0.0.0' : '127.0.0.1');
  if (!authEnabled && !LOOPBACK.has(host)) {
    throw new Error(
      `auth is off, so runstate only listens on loopback; HOST=${host} is not (unset it, or ` +
        'turn auth on)',
    );
  }
  const corsOrigins = options.corsOrigins ?? [];
  const unavailableLog = throttledWarning(logger, 'database unavailable; answered 503', 5000);
  const events = createEventHub<Topics>({
    bufferSize: options.subscriberBufferSize,
    revisionOf: { runUpdated: (run: unknown) => (run as RunRow).revision },
  });
  const tail = createChangeLogTail({
    db: database.db,
    logger,
    // Under ALL for every subscriber of the log, and under the run for those of some runs.
    publish: (change) => {
      metrics.observeFanoutLag((Date.now() - change.at.getTime()) / 1000);
      events.publish('statusChanged', ALL, change);
      events.publish('statusChanged', change.runId, change);
    },
    // A status change is also a runUpdated event: read the runs someone here is watching.
    afterBatch: async (changes) => {
      const watched = [...new Set(changes.map((c) => c.runId))].filter((id) =>
        events.hasSubscribers('runUpdated', id),
      );
      if (watched.length === 0) return;
      for (const run of await getRunsByIds(database.db, watched))
        events.publish('runUpdated', run.id, run);
    },
  });
  const commitSignal = createCommitSignal({ database, tail, logger });
  const runSignal = createRunSignal({ database, events, logger });
  const auth = createAuthService({ database, logger, enabled: authEnabled });
  /** Requests and mutations a drain waits for. */
  const inflight = createInflight();
  let draining = false;
  let stopping: Promise<void> | null = null;
  const metrics = createMetrics({
    graphqlPath,
    activeSubscriptions: () => events.size(),
    openSockets: () => wsServer.clients.size,
    tailPosition: () => tail.position(),
    tailWaitSeconds: () => {
      const status = tail.status();
      return 'since' in status ? (Date.now() - status.since) / 1000 : 0;
    },
  });
  const services: AppServices = {
    db: database.db,
    events,
    tail,
    auth,
    mutationRate: createRateLimiter({
      perSecond: limits.mutationsPerSecond,
      burst: limits.mutationBurst,
    }),
    subscriptionQuota: createSubscriptionQuota(limits.maxSubscriptionsPerToken),
    runs: createRunService({ db: database.db, events, changeLog: commitSignal, runSignal }),
    measurements: createMeasurementService({ db: database.db, events, runSignal }),
  };

  const reaper = createReaper({
    runs: services.runs,
    logger,
    intervalMs: options.reaperIntervalMs ?? 1000,
    stopTimeoutSeconds: options.stopTimeoutSeconds ?? 300,
  });

  const yoga = createYoga<object, GraphQLContext>({
    schema: createSchema<GraphQLContext>({
      typeDefs: readFileSync(SCHEMA_PATH, 'utf8'),
      resolvers: instrumentResolvers(resolvers, metrics) as never,
    }),
    graphqlEndpoint: graphqlPath,
    graphiql: options.graphiql === false ? false : { subscriptionsProtocol: 'WS' },
    // Unexpected errors (bugs) become "Unexpected error." with no stack or SQL; a database that
    // is away becomes a retryable 503 SERVICE_UNAVAILABLE.
    maskedErrors: {
      isDev: false,
      maskError: (error, message, isDev) => {
        if (isDatabaseUnavailable(error)) {
          unavailableLog.note(error);
          return new ServiceUnavailableError();
        }
        return maskError(error, message, isDev);
      },
    },
    // Browsers may read answers only on the service's own origin and those configured.
    cors: (request) => corsFor(request.headers.get('origin'), corsOrigins),
    landingPage: false,
    // No file uploads: a multipart/form-data body is refused like any unsupported content type.
    multipart: false,
    logging: {
      debug: (...args) => logger.debug(args.map(String).join(' ')),
      info: (...args) => logger.info(args.map(String).join(' ')),
      warn: (...args) => logger.warn(args.map(String).join(' ')),
      // A database that is away was logged once already (as a warning) where it became a 503.
      error: (...args) =>
        isDatabaseUnavailable(args[0])
          ? undefined
          : logger.error({ err: args[0] }, args.slice(1).map(String).join(' ')),
    },
    // Every operation is authenticated: HTTP and SSE by their Authorization header, WebSocket
    // operations by the connection's connectionParams (checked again per operation, so a
    // revoked token cannot start anything new on a socket it opened earlier).
    context: async (initial) => {
      const request = (initial as { request?: Request }).request;
      const secret = request
        ? bearerSecret(request.headers.get('authorization'))
        : connectionParamsSecret((initial as { connectionParams?: unknown }).connectionParams);
      const principal = await auth.authenticate(secret);
      return { ...services, principal, loaders: createLoaders(database.db) };
    },
    plugins: [
      useParserLimits({ maxTokens: limits.maxTokens }) as Plugin,
      ...useQueryLimits(limits),
      useSharedSubscriptionExecution(),
      useInputErrorCodes() as Plugin,
      useErrorMetrics(metrics),
      // Queries and mutations (over any transport) a drain waits for, counted around the
      // execution itself so one that throws is uncounted too.
      {
        onExecute: ({ executeFn, setExecuteFn }) => {
          setExecuteFn((args) => {
            inflight.begin();
            try {
              return Promise.resolve(executeFn(args)).finally(() => inflight.end());
            } catch (error) {
              inflight.end();
              throw error;
            }
          });
        },
      } satisfies Plugin,
    ],
  });

  /** /ready: 200 when this instance can serve, else 503; with each check's state. */
  let migrationsApplied = false;
  async function answerReady(res: ServerResponse): Promise<void> {
    const checks: Record<string, string> = {};
    const attempt = async (name: string, check: () => Promise<string>) => {
      try {
        checks[name] = await withTimeout(check(), 2000);
      } catch (error) {
        checks[name] = error instanceof TimeoutError ? 'timed out' : 'unreachable';
      }
    };
    await attempt('database', async () =>
      (await pingDatabase(database.db)) ? 'ok' : 'unreachable',
    );
    await attempt('migrations', async () => {
      // Once applied, they stay applied: ask the database only until then.
      if (!migrationsApplied) {
        const pending = await listPendingMigrations(database.db);
        migrationsApplied = pending.length === 0;
        if (!migrationsApplied) return `${pending.length} pending`;
      }
      return 'ok';
    });
    const tailState = describeTail(tail.status());
    checks['changeLogTail'] = tailState.check;
    checks['accepting'] = draining ? 'draining' : 'ok';
    // A tail waiting for someone's open transaction degrades live delivery on every instance
    // alike: say so, but stay in rotation (writes and reads are served; see change-log-tail.ts).
    const ready = Object.entries(checks).every(
      ([name, state]) => state === 'ok' || (name === 'changeLogTail' && tailState.degraded),
    );
    const status = !ready ? 'not ready' : tailState.degraded ? 'degraded' : 'ready';
    sendJson(res, ready ? 200 : 503, { status, checks });
  }

  const dashboard = options.dashboard === false ? null : createDashboardAssets(graphqlPath);

  async function answerMetrics(res: ServerResponse): Promise<void> {
    const { contentType, body } = await metrics.render();
    res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' });
    res.end(body);
  }

  const server: Server = createServer((req, res) => {
    const started = performance.now();
    const requestId = requestIdFrom(req.headers['x-request-id']);
    res.setHeader('x-request-id', requestId);
    const path = (req.url ?? '/').split('?', 1)[0]!;
    // Every request counts for a drain from its arrival (its token check may query the
    // database) until it is answered, or until its answer turns out to be a stream (SSE or
    // multipart): a stream lives as long as its subscription, and a drain ends it instead.
    inflight.begin();
    let counted = true;
    const uncount = () => {
      if (!counted) return;
      counted = false;
      inflight.end();
    };
    const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => ServerResponse;
    res.writeHead = ((...args: unknown[]) => {
      const written = writeHead(...args);
      if (/text\/event-stream|multipart\/mixed/.test(String(res.getHeader('content-type'))))
        uncount();
      return written;
    }) as typeof res.writeHead;
    res.once('close', () => {
      uncount();
      const seconds = (performance.now() - started) / 1000;
      metrics.observeRequest(metrics.routeOf(path), req.method ?? 'GET', res.statusCode, seconds);
      logger.debug(
        { requestId, method: req.method, path, status: res.statusCode, ms: seconds * 1000 },
        'request',
      );
    });
    runInRequest({ requestId }, () => {
      if (path === '/ready') return void answerReady(res).catch(() => res.destroy());
      if (path === '/metrics') return void answerMetrics(res).catch(() => res.destroy());
      if (draining) {
        // Keep-alive connections may still bring requests: send them elsewhere.
        if (path !== '/health') return refuseWhileDraining(res);
        res.setHeader('connection', 'close');
      }
      if (dashboard?.serve(req, res, path)) return;
      if (refuseLargeBody(req, res, limits.maxBodyBytes)) return;
      if (path === graphqlPath && refuseCrossSiteForm(req, res)) return;
      if (refuseUnacceptable(req, res)) return;
      void yoga(req, res);
    });
  });
  const wsServer = new WebSocketServer({
    server,
    path: graphqlPath,
    // Checked from each frame's header, before its payload is read: ws closes with 1009.
    maxPayload: limits.maxWsFrameBytes,
    // A draining instance takes no new sockets: 503, like its HTTP requests. A browser page of
    // an origin not allowed gets none either (browsers send Origin; other clients need not).
    verifyClient: (info, accept) => {
      if (draining) return accept(false, 503, 'Service Unavailable: shutting down');
      const origin = info.req.headers.origin;
      if (origin !== undefined && !originAllowed(origin, info.req.headers.host, corsOrigins))
        return accept(false, 403, 'Forbidden: this origin may not open a WebSocket here');
      accept(true);
    },
  });
  // Registered before graphql-ws's own listener, so it sees every socket first.
  wsServer.on('connection', (socket, request) => {
    screenMessages(socket, requestIdFrom(request.headers['x-request-id']), logger);
  });

  // graphql-ws runs operations through yoga's envelop so plugins, context and masking apply.
  const wsDisposable = useServer(
    {
      // A connection without a valid token is closed at once with 4403 Forbidden; a connection
      // whose token is revoked later is closed the same way (after its subscriptions ended
      // with TOKEN_REVOKED).
      onConnect: async (ctx) => {
        let principal;
        try {
          principal = await auth.authenticate(connectionParamsSecret(ctx.connectionParams));
        } catch (error) {
          if (error instanceof UnauthenticatedError) return false;
          throw error;
        }
        if (principal.tokenId != null) {
          const socket = ctx.extra.socket;
          const unwatch = auth.onRevoked(principal.tokenId, () => {
            setTimeout(() => socket.close(4403, 'Forbidden: the API token was revoked'), 100);
          });
          socket.once('close', unwatch);
        }
        return true;
      },
      execute: (args) => (args.rootValue as EnvelopRoot).execute(args) as never,
      subscribe: (args) => (args.rootValue as EnvelopRoot).subscribe(args) as never,
      onSubscribe: async (ctx, _id, payload) => {
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params: payload,
        });
        let document;
        try {
          document = parse(payload.query);
        } catch (error) {
          // graphql-ws closes the whole socket on anything but GraphQLErrors here.
          return [
            error instanceof GraphQLError
              ? error
              : new GraphQLError('The document could not be parsed.', {
                  extensions: { code: 'BAD_USER_INPUT' },
                }),
          ];
        }
        // The new operation is in ctx.subscriptions already.
        if (Object.keys(ctx.subscriptions).length > limits.maxSubscriptionsPerConnection) {
          return [
            new LimitExceededError(
              'subscriptionsPerConnection',
              limits.maxSubscriptionsPerConnection,
              `this connection has ${limits.maxSubscriptionsPerConnection} operations open, ` +
                'the most allowed: complete one first',
            ),
          ];
        }
        const errors = validate(schema, document);
        if (errors.length > 0) return errors;
        // As over HTTP: a document whose operation cannot be chosen is the client's error.
        if (!getOperationAST(document, payload.operationName ?? undefined)) {
          return [
            new GraphQLError(
              payload.operationName
                ? `Unknown operation named "${payload.operationName}".`
                : 'Could not determine what operation to execute: name it with operationName.',
              { extensions: { code: 'OPERATION_RESOLUTION_FAILURE' } },
            ),
          ];
        }
        let contextValue;
        try {
          contextValue = await contextFactory();
        } catch (error) {
          if (error instanceof GraphQLError) return [error];
          throw error;
        }
        // The drain may have begun while the token was checked; it no longer waits for newcomers.
        if (draining) return [new ServerStoppingError()];
        const args: ExecutionArgs = {
          schema,
          operationName: payload.operationName ?? null,
          document,
          variableValues: payload.variables ?? null,
          contextValue,
          rootValue: { execute, subscribe } satisfies EnvelopRoot,
        };
        return args;
      },
    },
    wsServer,
  );

  return {
    yoga,
    services,
    async start() {
      let createdAdminToken: string | null;
      try {
        createdAdminToken = await auth.bootstrap({ adminToken: options.auth?.adminToken });
        await auth.start();
        await tail.start();
        await commitSignal.start();
        await runSignal.start();
        reaper.start();
      } catch (error) {
        // Leave nothing running behind a failed start.
        await runSignal.stop().catch(() => {});
        await commitSignal.stop().catch(() => {});
        await tail.stop();
        await auth.stop().catch(() => {});
        throw error;
      }
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(options.port ?? 4000, host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      const { port } = server.address() as AddressInfo;
      const shown = host === '0.0.0.0' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
      return {
        port,
        url: `http://${shown}:${port}${graphqlPath}`,
        wsUrl: `ws://${shown}:${port}${graphqlPath}`,
        createdAdminToken,
      };
    },
    stop() {
      stopping ??= drainAndStop();
      return stopping;
    },
  };

  async function drainAndStop(): Promise<void> {
    // Still listening while draining, so load balancers read /ready's 503 and callers get a
    // 503 SERVER_STOPPING (retry elsewhere) rather than a refused connection.
    draining = true;
    const drained = await inflight.settled(options.drainTimeoutMs ?? 10_000);
    if (!drained) logger.warn({ inflight: inflight.size() }, 'drain timed out');
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    await reaper.stop();
    await runSignal.stop();
    await commitSignal.stop();
    await tail.stop();
    await auth.stop();
    events.closeAll(new ServerStoppingError());
    // Let the closing results reach the clients before their connections go.
    await new Promise((resolve) => setTimeout(resolve, 50));
    for (const client of wsServer.clients)
      client.close(1012, 'Service Restart: reconnect, to another instance');
    // A peer that never answers the close frame would hold dispose() for ws's 30 s.
    setTimeout(() => {
      for (const client of wsServer.clients) client.terminate();
    }, 1000).unref();
    await wsDisposable.dispose();
    await new Promise<void>((resolve) => wsServer.close(() => resolve()));
    server.closeIdleConnections();
    // SSE responses stay open until their stream ends; don't wait for them forever.
    setTimeout(() => server.closeAllConnections(), 1000).unref();
    await closed;
  }
}

/**
 * A warning that may come with every request during an outage: the first is logged with its
 * error, then at most one line per `intervalMs` saying how many more there were.
 */
function throttledWarning(logger: Logger, message: string, intervalMs: number) {
  let last = 0;
  let suppressed = 0;
  return {
    note(error: unknown): void {
      const now = Date.now();
      if (now - last < intervalMs) {
        suppressed++;
        return;
      }
      logger.warn(
        { err: error, ...(suppressed > 0 ? { moreSinceLastLine: suppressed } : {}) },
        message,
      );
      last = now;
      suppressed = 0;
    },
  };
}

/** A wait of the change-log tail shorter than this is business as usual (concurrent writers). */
const TAIL_WAIT_REPORTED_MS = 1000;

/** /ready's word on the change-log tail, and whether it only degrades the instance. */
function describeTail(status: TailStatus): { check: string; degraded: boolean } {
  if (!('since' in status)) return { check: status.state, degraded: false };
  const waited = Date.now() - status.since;
  const pids = status.pids.length > 0 ? status.pids.join(', ') : 'a prepared transaction';
  const what = `waiting ${waited} ms for pid ${pids} (open transactions that wrote status changes)`;
  if (status.state === 'starting') return { check: `starting: ${what}`, degraded: false };
  if (waited < TAIL_WAIT_REPORTED_MS) return { check: 'ok', degraded: false };
  return { check: what, degraded: true };
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/** A request that arrived while this instance drains: 503, try another instance. */
function refuseWhileDraining(res: ServerResponse): void {
  sendJson(
    res,
    503,
    {
      errors: [
        {
          message: 'this instance is shutting down: retry, another instance will answer',
          extensions: { code: 'SERVER_STOPPING' },
        },
      ],
    },
    { connection: 'close', 'retry-after': '0' },
  );
}

function sendJson(
  res: ServerResponse,
  status: number,
  value: unknown,
  headers: Record<string, string> = {},
): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(body);
}

class TimeoutError extends Error {}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError()), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Content types a web page's form (or a no-CORS fetch) can POST without a preflight, which yoga
 * would otherwise run (text/plain and multipart/form-data it refuses with 415 by itself).
 */
const SIMPLE_CONTENT_TYPES = new Set(['', 'application/x-www-form-urlencoded']);

/**
 * CSRF: refuse (415) a POST that any web page could send without a CORS preflight (a form, or no
 * content type), unless it carries a header only a preflighted request can
 * (`GraphQL-Require-Preflight`). Clients send application/json. GET never mutates (yoga refuses
 * mutations over GET).
 */
function refuseCrossSiteForm(req: IncomingMessage, res: ServerResponse): boolean {
  if (req.method !== 'POST') return false;
  const type = (req.headers['content-type'] ?? '').split(';', 1)[0]!.trim().toLowerCase();
  if (!SIMPLE_CONTENT_TYPES.has(type)) return false;
  if (req.headers['graphql-require-preflight'] !== undefined) return false;
  sendJson(
    res,
    415,
    {
      errors: [
        {
          message:
            'send the operation as application/json: a form POST could come from any web page, ' +
            'so it is refused (or add a GraphQL-Require-Preflight header)',
          extensions: { code: 'BAD_REQUEST' },
        },
      ],
    },
    { connection: 'close' },
  );
  return true;
}

/** Whether a browser page of `origin` may use this service reached at `host`. */
function originAllowed(
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
function corsFor(origin: string | null, allowed: readonly string[]) {
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

/** Media types yoga can answer a POST with. */
const ANSWERABLE = new Set([
  '*/*',
  'application/*',
  'application/json',
  'application/graphql-response+json',
  'text/event-stream',
  'multipart/mixed',
]);

/**
 * Refuse (406) a POST whose Accept header admits no answer runstate can give, before it runs:
 * yoga would run the operation, commit a mutation, and only then find it cannot answer.
 */
function refuseUnacceptable(req: IncomingMessage, res: ServerResponse): boolean {
  const accept = req.headers.accept;
  if (req.method !== 'POST' || !accept?.trim()) return false;
  const types = accept.split(',').map((part) => part.split(';')[0]!.trim().toLowerCase());
  if (types.some((type) => ANSWERABLE.has(type))) return false;
  res.writeHead(406, { 'content-length': 0, connection: 'close' });
  res.end();
  return true;
}

/** Longest subscription id accepted (graphql-ws echoes ids in close reasons of 123 bytes). */
const MAX_OPERATION_ID = 64;

/**
 * graphql-ws answers a message only a server may send (next, error, connection_ack) with an
 * exception, which its ws adapter turns into close code 4500 and a logged stack trace; an id
 * too long for a close reason makes `ws` throw. Both are the client's fault: close with 4400.
 * Every other message is served as a request of its own for the logs: the connection's id (its
 * X-Request-Id, or a new one) plus a sequence number.
 */
function screenMessages(socket: WebSocket, connectionId: string, logger: Logger): void {
  const emit = socket.emit.bind(socket) as (event: string, ...args: unknown[]) => boolean;
  let sequence = 0;
  socket.emit = ((event: string, ...args: unknown[]) => {
    // A frame over the cap or broken framing is the client's fault, and ws closes the socket
    // itself (1009, 1002): graphql-ws would log it as an internal error and close with 1011.
    if (event === 'error' && /^WS_ERR_/.test(String((args[0] as { code?: unknown })?.code))) {
      logger.debug({ err: args[0] }, 'WebSocket closed for a protocol error of the client');
      return true;
    }
    if (event !== 'message') return emit(event, ...args);
    if (!acceptableFromClient(args[0] as RawData)) {
      socket.close(4400, 'Invalid message received');
      return true;
    }
    // Each message is a request of its own for the logs: the connection's id and a number.
    return runInRequest({ requestId: `${connectionId}/${++sequence}` }, () => emit(event, ...args));
  }) as typeof socket.emit;
}

function acceptableFromClient(data: RawData): boolean {
  let message: unknown;
  try {
    message = JSON.parse(String(data));
  } catch {
    return true; // not JSON: graphql-ws itself closes with 4400
  }
  if (!message || typeof message !== 'object') return true;
  const { type, id } = message as { type?: unknown; id?: unknown };
  if (type === 'next' || type === 'error' || type === 'connection_ack') return false;
  return typeof id !== 'string' || id.length <= MAX_OPERATION_ID;
}

/**
 * Refuse a request body over the limit before reading it: 413 when Content-Length says so,
 * 411 for a body without a length (chunked), whose size would only be known by reading it.
 * Answers whether the request was refused.
 */
function refuseLargeBody(req: IncomingMessage, res: ServerResponse, maxBytes: number): boolean {
  const length = req.headers['content-length'];
  const chunked = length === undefined && req.headers['transfer-encoding'] !== undefined;
  if (!chunked && (length === undefined || Number(length) <= maxBytes)) return false;
  const status = chunked ? 411 : 413;
  const message = chunked
    ? 'send the request body with a Content-Length header'
    : `the request body is larger than ${maxBytes} bytes`;
  // The body is not read: close the connection rather than leave it unread on a keep-alive one.
  sendJson(
    res,
    status,
    {
      errors: [
        { message, extensions: { code: 'LIMIT_EXCEEDED', limit: 'bodyBytes', max: maxBytes } },
      ],
    },
    { connection: 'close' },
  );
  return true;
}

interface EnvelopRoot {
  execute: (args: ExecutionArgs) => unknown;
  subscribe: (args: ExecutionArgs) => unknown;
}
