import type { AddressInfo } from 'node:net';
import { createAuthService } from './auth/auth-service.js';
import { createDashboardAssets } from './dashboard-assets.js';
import type { Database } from './db/client.js';
import type { RunRow } from './db/schema.js';
import { createChangeLogTail } from './changelog/change-log-tail.js';
import { createCommitSignal } from './changelog/commit-signal.js';
import { createEventHub } from './live/event-hub.js';
import { createRunSignal } from './live/run-signal.js';
import { createRunUpdates } from './live/run-updates.js';
import { ALL, type Topics } from './live/topics.js';
import type { AppServices } from './graphql/context.js';
import { DEFAULT_LIMITS, type Limits } from './limits/limits.js';
import { createRateLimiter } from './limits/rate-limiter.js';
import { createSubscriptionQuota } from './limits/subscription-quota.js';
import type { Logger } from './logger.js';
import {
  createMeasurementService,
  getWrittenMeasurements,
} from './measurements/measurement-service.js';
import { createInflight } from './ops/inflight.js';
import { createMetrics } from './ops/metrics.js';
import { createReaper } from './runs/reaper.js';
import { createRetention, type RetentionOptions } from './runs/retention.js';
import { foldCountsLog } from './runs/run-counts.js';
import { createRunService } from './runs/run-service.js';
import { getRunsByIds } from './runs/run-queries.js';
import { createHealthEndpoints, tailWaitSeconds } from './server/health.js';
import { createGraphiQLAssets } from './server/graphiql.js';
import { createHttpServer } from './server/http.js';
import { drainAndStop } from './server/shutdown.js';
import { attachWebSocket } from './server/websocket.js';
import { createYogaServer, type RunstateYoga } from './server/yoga.js';
import { createErrorNaming } from './graphql/domain-errors.js';

/**
 * The composition root: the database's parts (change-log tail, signals, services, reaper), the
 * GraphQL server (server/yoga.ts), HTTP (server/http.ts), WebSocket (server/websocket.ts),
 * health and metrics (server/health.ts) and the drain (server/shutdown.ts), put together.
 */

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
  /**
   * What is deleted when (runs/retention.ts): default keep runs for ever, idempotency keys 24 h;
   * `intervalMs` between passes (default 60 s).
   */
  retention?: Partial<RetentionOptions> & { intervalMs?: number };
  /** How long stop() waits for in-flight requests and mutations (default 10,000 ms). */
  drainTimeoutMs?: number;
  /** Serve the dashboard at / (default true). */
  dashboard?: boolean;
  /**
   * Origins whose browser pages may call the API (CORS and WebSocket Origin); `*` allows any.
   * Default: none but the service's own.
   */
  corsOrigins?: readonly string[];
  /**
   * An OpenTelemetry span per GraphQL operation (default false). SQL spans come from the
   * database (createPostgresDatabase's `trace`); a tracer provider must be installed
   * (ops/tracing.ts), as serve() does when OTEL_EXPORTER_OTLP_ENDPOINT is set.
   */
  tracing?: boolean;
}

export interface App {
  readonly yoga: RunstateYoga;
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
  let draining = false;
  const isDraining = () => draining;

  const events = createEventHub<Topics>({
    bufferSize: options.subscriberBufferSize,
    revisionOf: { runUpdated: (run: unknown) => (run as RunRow).revision },
  });
  const runUpdates = createRunUpdates({
    events,
    readRuns: (ids) => getRunsByIds(database.db, ids),
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
    // A status change is also a runUpdated event for those watching its run.
    // A step's change changes its parent's childCounts too.
    afterBatch: (changes) =>
      runUpdates.refresh(changes.flatMap((c) => (c.parentId ? [c.runId, c.parentId] : [c.runId]))),
  });
  const commitSignal = createCommitSignal({ database, tail, logger });
  const runSignal = createRunSignal({
    database,
    events,
    logger,
    runUpdates,
    read: {
      writtenMeasurements: (runId, first, last, txId) =>
        getWrittenMeasurements(database.db, runId, first, last, txId),
    },
  });
  const auth = createAuthService({ database, logger, enabled: authEnabled });
  /** Requests and mutations a drain waits for. */
  const inflight = createInflight();
  const metrics = createMetrics({
    graphqlPath,
    activeSubscriptions: () => events.size(),
    openSockets: () => webSocket.server.clients.size,
    tailPosition: () => tail.position(),
    tailWaitSeconds: () => tailWaitSeconds(tail.status()),
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
    runs: createRunService({ db: database.db, changeLog: commitSignal, runSignal, runUpdates }),
    measurements: createMeasurementService({ db: database.db, events, runSignal, runUpdates }),
  };
  const reaper = createReaper({
    runs: services.runs,
    // Up to this instance's tail: below it no change can still commit (run-counts.ts).
    foldCounts: () => foldCountsLog(database.db, tail.position()),
    retention: createRetention({
      db: database.db,
      logger,
      options: {
        retentionDays: options.retention?.retentionDays ?? null,
        idempotencyTtlHours: options.retention?.idempotencyTtlHours ?? 24,
        batchSize: options.retention?.batchSize,
      },
      intervalMs: options.retention?.intervalMs,
    }).pass,
    logger,
    intervalMs: options.reaperIntervalMs ?? 1000,
    stopTimeoutSeconds: options.stopTimeoutSeconds ?? 300,
  });

  const nameError = createErrorNaming(logger);
  const yoga = createYogaServer({
    services,
    auth,
    db: database.db,
    metrics,
    logger,
    limits,
    inflight,
    graphqlPath,
    graphiql: options.graphiql !== false,
    corsOrigins,
    tracing: options.tracing ?? false,
    nameError,
  });
  const httpServer = createHttpServer({
    yoga,
    health: createHealthEndpoints({ database, tail, metrics, isDraining }),
    dashboard: options.dashboard === false ? null : createDashboardAssets(graphqlPath),
    graphiql: options.graphiql !== false ? createGraphiQLAssets() : null,
    inflight,
    metrics,
    logger,
    maxBodyBytes: limits.maxBodyBytes,
    isDraining,
    graphqlPath,
  });
  const webSocket = attachWebSocket({
    httpServer,
    yoga,
    auth,
    limits,
    logger,
    graphqlPath,
    corsOrigins,
    isDraining,
    nameError,
  });

  let stopping: Promise<void> | null = null;
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
        httpServer.once('error', reject);
        httpServer.listen(options.port ?? 4000, host, () => {
          httpServer.off('error', reject);
          resolve();
        });
      });
      const { port } = httpServer.address() as AddressInfo;
      const shown = host === '0.0.0.0' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
      return {
        port,
        url: `http://${shown}:${port}${graphqlPath}`,
        wsUrl: `ws://${shown}:${port}${graphqlPath}`,
        createdAdminToken,
      };
    },
    stop() {
      // Still listening while draining: see drainAndStop.
      draining = true;
      stopping ??= drainAndStop({
        httpServer,
        webSocket,
        inflight,
        background: [reaper, runSignal, commitSignal, tail, auth],
        closeSubscriptions: (error) => events.closeAll(error),
        logger,
        drainTimeoutMs: options.drainTimeoutMs ?? 10_000,
      });
      return stopping;
    },
  };
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);
