import { createClient, type Client } from 'graphql-ws';
import { WebSocket } from 'ws';
import { afterAll, beforeAll, inject } from 'vitest';
import { buildApp, type App, type AppOptions } from '../../src/app.js';
import { createPostgresDatabase, type Database } from '../../src/db/client.js';
import type { Limits } from '../../src/limits/limits.js';
import { createLogger } from '../../src/logger.js';

/** The admin token every test server adopts (as RUNSTATE_ADMIN_TOKEN would be). */
export const TEST_ADMIN_TOKEN = 'rst_test-suite-admin-token-0123456789';

/** Whose token a request carries: a secret, or null for none at all. */
export interface AsToken {
  token?: string | null;
}

export interface TestServer {
  app: App;
  database: Database;
  url: string;
  wsUrl: string;
  /** POST a GraphQL operation over real HTTP. */
  gql<T = Record<string, unknown>>(
    query: string,
    variables?: Record<string, unknown>,
    as?: AsToken,
  ): Promise<GqlResponse<T>>;
  /** A graphql-ws client on a real socket (the admin token unless told); closed by stop(). */
  wsClient(as?: AsToken): Client;
  stop(): Promise<void>;
}

export interface GqlResponse<T> {
  status: number;
  data?: T | null;
  errors?: { message: string; path?: string[]; extensions?: Record<string, unknown> }[];
}

/**
 * The test file's server: started before its tests, stopped after them. The object it answers
 * is filled in by the time the first test runs.
 */
export function useServer(options: Parameters<typeof startServer>[0] = {}): TestServer {
  const server = {} as TestServer;
  beforeAll(async () => {
    Object.assign(server, await startServer(options));
  });
  afterAll(async () => {
    await server.stop?.(); // absent when the start failed
  });
  return server;
}

/**
 * The test file's server on a pool of its own that records the text of every statement it sends,
 * in order (what a test of the SQL sent reads).
 */
export function useRecordingServer(): { server: TestServer; statements: string[] } {
  const statements: string[] = [];
  const server = {} as TestServer;
  let database: Database | undefined;
  beforeAll(async () => {
    database = createPostgresDatabase({
      url: inject('databaseUrl'),
      poolSize: 3,
      onStatement: (query) => statements.push(query),
    });
    Object.assign(server, await startServer({ database }));
  });
  afterAll(async () => {
    await server.stop?.();
    await database?.close();
  });
  return { server, statements };
}

/** Several servers for the test file, over the one database (several instances), at once. */
export function useServers(
  count: number,
  options: Parameters<typeof startServer>[0] = {},
): TestServer[] {
  const servers = Array.from({ length: count }, () => ({}) as TestServer);
  beforeAll(async () => {
    const started = await Promise.all(servers.map(() => startServer(options)));
    started.forEach((server, i) => Object.assign(servers[i]!, server));
  });
  afterAll(async () => {
    await Promise.all(servers.map((server) => server.stop?.()));
  });
  return servers;
}

/** A service on port 0 over the run's test database (real PostgreSQL). */
export async function startServer(
  options: {
    database?: Database;
    subscriberBufferSize?: number;
    reaperIntervalMs?: number;
    stopTimeoutSeconds?: number;
    authEnabled?: boolean;
    limits?: Partial<Limits>;
    drainTimeoutMs?: number;
    corsOrigins?: string[];
    retention?: AppOptions['retention'];
    /** Where the service logs (none by default). */
    logger?: AppOptions['logger'];
  } = {},
): Promise<TestServer> {
  const database =
    options.database ?? createPostgresDatabase({ url: inject('databaseUrl'), poolSize: 10 });
  const app = buildApp({
    database,
    logger: options.logger ?? createLogger('silent'),
    port: 0,
    host: '127.0.0.1',
    subscriberBufferSize: options.subscriberBufferSize,
    reaperIntervalMs: options.reaperIntervalMs,
    stopTimeoutSeconds: options.stopTimeoutSeconds,
    auth: { enabled: options.authEnabled ?? true, adminToken: TEST_ADMIN_TOKEN },
    limits: options.limits,
    drainTimeoutMs: options.drainTimeoutMs,
    corsOrigins: options.corsOrigins,
    retention: options.retention,
  });
  const { url, wsUrl } = await app.start();
  const clients: Client[] = [];
  return {
    app,
    database,
    url,
    wsUrl,
    gql: (query, variables, as) => postGraphQL(url, query, variables, as),
    wsClient(as = {}) {
      const token = as.token === undefined ? TEST_ADMIN_TOKEN : as.token;
      const client = createClient({
        url: wsUrl,
        webSocketImpl: WebSocket,
        connectionParams: token == null ? undefined : { token },
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
  as: AsToken = {},
): Promise<GqlResponse<T>> {
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/graphql-response+json',
      ...authHeader(as),
    },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as Omit<GqlResponse<T>, 'status'>;
  return { status: response.status, ...body };
}

/** A project name no other test uses, so tests can share the database and run concurrently. */
export function uniqueProject(label = 'p'): string {
  return `${label}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

/** The Authorization header for a request (the admin token unless told otherwise). */
export function authHeader(as: AsToken = {}): Record<string, string> {
  const token = as.token === undefined ? TEST_ADMIN_TOKEN : as.token;
  return token == null ? {} : { authorization: `Bearer ${token}` };
}
