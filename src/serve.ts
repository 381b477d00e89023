import { buildApp } from './app.js';
import { createDatabase } from './db/create-database.js';
import { graphiqlFrom, limitsFrom, type Env } from './env.js';
import { createLogger } from './logger.js';

/**
 * Open and migrate the database, serve, and drain and stop on SIGTERM or SIGINT: `npm start`
 * and `runstate serve`.
 */
export async function serve(env: Env): Promise<void> {
  const logger = createLogger(env.LOG_LEVEL);
  const started = performance.now();
  // Loaded only when asked for: the OpenTelemetry SDK costs nothing otherwise.
  const tracing = env.OTEL_EXPORTER_OTLP_ENDPOINT
    ? (await import('./ops/tracing.js')).startTracing({
        endpoint: env.OTEL_EXPORTER_OTLP_ENDPOINT,
        serviceName: env.OTEL_SERVICE_NAME,
      })
    : null;
  const database = await createDatabase(env);
  await database.migrate();
  const app = buildApp({
    database,
    logger,
    port: env.PORT,
    host: env.HOST,
    auth: { enabled: env.RUNSTATE_AUTH === 'on', adminToken: env.RUNSTATE_ADMIN_TOKEN },
    limits: limitsFrom(env),
    graphqlPath: env.GRAPHQL_PATH,
    graphiql: graphiqlFrom(env),
    subscriberBufferSize: env.SUBSCRIBER_BUFFER,
    reaperIntervalMs: env.REAPER_INTERVAL_MS,
    stopTimeoutSeconds: env.STOP_TIMEOUT,
    retention: {
      retentionDays: env.RETENTION_DAYS ?? null,
      idempotencyTtlHours: env.IDEMPOTENCY_TTL_HOURS,
    },
    drainTimeoutMs: env.DRAIN_TIMEOUT_MS,
    dashboard: env.DASHBOARD,
    corsOrigins: env.CORS_ORIGINS,
    tracing: tracing !== null,
  });
  const { url, createdAdminToken } = await app.start();
  if (createdAdminToken) {
    // Shown once, on the terminal: only its hash is stored.
    process.stderr.write(
      `\nrunstate created the first admin API token. It is shown only now; keep it safe:\n\n` +
        `    ${createdAdminToken}\n\n` +
        `Send it as "Authorization: Bearer <token>" (or connectionParams { token } on WebSocket),\n` +
        `and create narrower tokens with the createApiToken mutation.\n\n`,
    );
    logger.info('created the first admin API token (printed once on stderr)');
  }
  if (env.RUNSTATE_AUTH === 'off') {
    logger.warn(
      { url },
      'RUNSTATE_AUTH=off: no API tokens are checked, anyone who can connect may do anything; ' +
        'listening on loopback only',
    );
  }
  logger.info(
    {
      url,
      database:
        database.kind === 'pglite' ? `embedded PGlite in ${env.RUNSTATE_DATA_DIR}` : 'PostgreSQL',
      startupMs: Math.round(performance.now() - started),
    },
    `runstate listening on ${url}`,
  );

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, drainTimeoutMs: env.DRAIN_TIMEOUT_MS }, 'draining, then stopping');
    const timer = setTimeout(() => {
      logger.error('shutdown took too long; exiting');
      process.exit(1);
    }, env.DRAIN_TIMEOUT_MS + 5_000);
    timer.unref();
    await app.stop();
    await database.close();
    await tracing?.shutdown().catch(() => {});
    logger.info('stopped');
  };
  // A bug must not take every client down with it: log, keep serving.
  process.on('unhandledRejection', (reason) =>
    logger.error({ err: reason }, 'unhandled rejection'),
  );
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
}
