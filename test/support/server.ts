import { createClient, type Client } from 'graphql-ws';
import { WebSocket } from 'ws';
import { inject } from 'vitest';
import { buildApp, type App } from '../../src/app.js';
import { createPostgresDatabase, type Database } from '../../src/db/client.js';
import { createLogger } from '../../src/logger.js';

export interface TestServer {
  app: App;
  database: Database;
  url: string;
  wsUrl: string;
  /** POST a GraphQL operation over real HTTP. */
  gql<T = Record<string, unknown>>(
    query: string,
    variables?: Record<string, unknown>,
  ): Promise<GqlResponse<T>>;
  /** A graphql-ws client on a real socket; closed by stop(). */
  wsClient(): Client;
  stop(): Promise<void>;
}

export interface GqlResponse<T> {
  status: number;
  data?: T | null;
  errors?: { message: string; path?: string[]; extensions?: Record<string, unknown> }[];
}

/** A service on port 0 over the run's test database (real PostgreSQL). */
export async function startServer(
  options: {
    database?: Database;
    subscriberBufferSize?: number;
    reaperIntervalMs?: number;
    stopTimeoutSeconds?: number;
  } = {},
): Promise<TestServer> {
  const database =
    options.database ?? createPostgresDatabase({ url: inject('databaseUrl'), poolSize: 10 });
  const app = buildApp({
    database,
    logger: createLogger('silent'),
    port: 0,
    host: '127.0.0.1',
    subscriberBufferSize: options.subscriberBufferSize,
    reaperIntervalMs: options.reaperIntervalMs,
    stopTimeoutSeconds: options.stopTimeoutSeconds,
  });
  const { url, wsUrl } = await app.start();
  const clients: Client[] = [];
  return {
    app,
    database,
    url,
    wsUrl,
    gql: (query, variables) => postGraphQL(url, query, variables),
    wsClient() {
      const client = createClient({
        url: wsUrl,
        webSocketImpl: WebSocket,
        retryAttempts: 0,
        lazy: true,
      });
      clients.push(client);
      return client;
    },
    async stop() {
      // The server first, so its clients see what a real shutdown does to them.
      await app.stop();
      await Promise.all(clients.map((c) => c.dispose()));
      if (!options.database) await database.close();
    },
  };
}

export async function postGraphQL<T>(
  url: string,
  query: string,
  variables?: Record<string, unknown>,
): Promise<GqlResponse<T>> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as Omit<GqlResponse<T>, 'status'>;
  return { status: response.status, ...body };
}

/** A project name no other test uses, so tests can share the database and run concurrently. */
export function uniqueProject(label = 'p'): string {
  return `${label}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}
