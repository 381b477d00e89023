import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GraphQLError, type ExecutionArgs } from 'graphql';
import { createSchema, createYoga, type Plugin, type YogaServerInstance } from 'graphql-yoga';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import type { Database } from './db/client.js';
import { ServerStoppingError } from './errors.js';
import { createEventHub } from './events/event-hub.js';
import { createChangeLogTail } from './events/change-log-tail.js';
import { createCommitSignal } from './events/commit-signal.js';
import { createRunSignal } from './events/run-signal.js';
import { ALL, type Topics } from './events/topics.js';
import type { RunRow } from './db/schema.js';
import { getRunsByIds } from './runs/run-store.js';
import { createLoaders, type AppServices, type GraphQLContext } from './graphql/context.js';
import { useInputErrorCodes } from './graphql/input-errors.js';
import { useParserLimits } from './graphql/parser-limits.js';
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
  host?: string;
  graphqlPath?: string;
  graphiql?: boolean;
  /** Events a subscriber may fall behind by before it is closed (default 10,000). */
  subscriberBufferSize?: number;
  /** How often the reaper looks for runs past a deadline (default 1,000 ms). */
  reaperIntervalMs?: number;
  /** Seconds a run may stay STOPPING before the reaper stops it (default 300). */
  stopTimeoutSeconds?: number;
}

export interface App {
  readonly yoga: YogaServerInstance<object, GraphQLContext>;
  readonly services: AppServices;
  /** Listen; resolves with the bound address (port 0 picks a free port). */
  start(): Promise<{ port: number; url: string; wsUrl: string }>;
  /** Close sockets and subscriptions, stop listening. Does not close the database. */
  stop(): Promise<void>;
}

/** Build the HTTP + SSE (yoga) and WebSocket (graphql-ws) service over one database. */
export function buildApp(options: AppOptions): App {
  const { database, logger } = options;
  const graphqlPath = options.graphqlPath ?? '/graphql';
  const events = createEventHub<Topics>({
    bufferSize: options.subscriberBufferSize,
    revisionOf: { runUpdated: (run: unknown) => (run as RunRow).revision },
  });
  const tail = createChangeLogTail({
    db: database.db,
    logger,
    publish: (change) => events.publish('statusChanged', ALL, change),
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
  const services: AppServices = {
    db: database.db,
    events,
    tail,
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
      resolvers: resolvers as never,
    }),
    graphqlEndpoint: graphqlPath,
    graphiql: options.graphiql === false ? false : { subscriptionsProtocol: 'WS' },
    // Unexpected errors (database, bugs) become "Unexpected error." with no stack or SQL.
    maskedErrors: { isDev: false },
    landingPage: false,
    logging: {
      debug: (...args) => logger.debug(args.map(String).join(' ')),
      info: (...args) => logger.info(args.map(String).join(' ')),
      warn: (...args) => logger.warn(args.map(String).join(' ')),
      error: (...args) => logger.error({ err: args[0] }, args.slice(1).map(String).join(' ')),
    },
    context: () => ({ ...services, loaders: createLoaders(database.db) }),
    plugins: [useParserLimits({ maxTokens: 50_000 }) as Plugin, useInputErrorCodes() as Plugin],
  });

  const server: Server = createServer(yoga);
  const wsServer = new WebSocketServer({ server, path: graphqlPath });

  // graphql-ws runs operations through yoga's envelop so plugins, context and masking apply.
  const wsDisposable = useServer(
    {
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
        const errors = validate(schema, document);
        if (errors.length > 0) return errors;
        const args: ExecutionArgs = {
          schema,
          operationName: payload.operationName ?? null,
          document,
          variableValues: payload.variables ?? null,
          contextValue: await contextFactory(),
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
      try {
        await tail.start();
        await commitSignal.start();
        await runSignal.start();
        reaper.start();
      } catch (error) {
        // Leave nothing running behind a failed start.
        await runSignal.stop().catch(() => {});
        await commitSignal.stop().catch(() => {});
        await tail.stop();
        throw error;
      }
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(options.port ?? 4000, options.host ?? '0.0.0.0', () => {
          server.off('error', reject);
          resolve();
        });
      });
      const { port } = server.address() as AddressInfo;
      const host = options.host && options.host !== '0.0.0.0' ? options.host : '127.0.0.1';
      return {
        port,
        url: `http://${host}:${port}${graphqlPath}`,
        wsUrl: `ws://${host}:${port}${graphqlPath}`,
      };
    },
    async stop() {
      await reaper.stop();
      await runSignal.stop();
      await commitSignal.stop();
      await tail.stop();
      events.closeAll(new ServerStoppingError());
      // Let the closing results reach the clients before their connections go.
      await new Promise((resolve) => setTimeout(resolve, 50));
      await wsDisposable.dispose();
      for (const client of wsServer.clients) client.terminate();
      await new Promise<void>((resolve) => wsServer.close(() => resolve()));
      server.closeIdleConnections();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        // SSE responses stay open until their stream ends; don't wait for them forever.
        setTimeout(() => server.closeAllConnections(), 1000).unref();
      });
    },
  };
}

interface EnvelopRoot {
  execute: (args: ExecutionArgs) => unknown;
  subscribe: (args: ExecutionArgs) => unknown;
}
