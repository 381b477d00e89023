import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm';
import { sql, type SQL } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js';
import { migrate as migratePostgres } from 'drizzle-orm/postgres-js/migrator';
import postgres from 'postgres';
import { fromPackageRoot } from '../package-root.js';
import * as schema from './schema.js';

/** The drizzle database both drivers share: postgres.js on a real server, or embedded PGlite. */
export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;

/** A transaction handle; every store function accepts either. */
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];
export type Executor = Db | Tx;

export interface Database {
  readonly db: Db;
  readonly kind: 'postgres' | 'pglite';
  /** Apply pending migrations from drizzle/ (safe to run from several instances at once). */
  migrate(): Promise<void>;
  /**
   * LISTEN on a channel on a dedicated connection. `onListen` runs each time listening (re)starts,
   * e.g. after PostgreSQL restarted: notifications sent while disconnected are lost, so the caller
   * catches up there. Answers a function that stops listening.
   */
  listen(
    channel: string,
    onNotify: (payload: string) => void,
    onListen: () => void,
  ): Promise<() => Promise<void>>;
  /** NOTIFY a channel, outside any write transaction. */
  notify(channel: string, payload: string): Promise<void>;
  close(): Promise<void>;
}

/** The generated SQL migrations. */
export const MIGRATIONS_DIR = fromPackageRoot('drizzle');

/** A migrated, empty PGlite data directory, made by `npm run build`. */
export const PGLITE_TEMPLATE = fromPackageRoot('dist/pglite-template');

/**
 * Write a template (default PGLITE_TEMPLATE): a PGlite data directory created, migrated and
 * closed. Not a tarball for PGlite's `loadDataDir`: PGlite writes a loaded tarball's files to
 * disk through its WebAssembly file system, which took 1.5 s of a first start's 3.5 (issue 18);
 * the directory is copied by Node in 0.2 s and opened like any other.
 *
 * Made beside its place and renamed into it once closed, so a build cut short leaves no
 * half-made template; and readable by everyone, as the tarball was (PGlite makes some files
 * 0600, and a container's service need not run as the user who built it).
 */
export async function buildPgliteTemplate(path: string = PGLITE_TEMPLATE): Promise<void> {
  const building = `${path}.building-${process.pid}`;
  rmSync(building, { recursive: true, force: true });
  const client = await PGlite.create(building, { extensions: { pg_trgm } });
  await migratePglite(drizzlePglite(client, { schema }) as never, {
    migrationsFolder: MIGRATIONS_DIR,
  });
  await client.close();
  readableByAll(building);
  rmSync(path, { recursive: true, force: true });
  renameSync(building, path);
}

/** Add read permission for all to a tree (and search permission to its directories). */
function readableByAll(path: string): void {
  const stat = statSync(path);
  chmodSync(path, stat.mode | (stat.isDirectory() ? 0o555 : 0o444));
  if (stat.isDirectory()) for (const entry of readdirSync(path)) readableByAll(join(path, entry));
}

/** The file that makes a directory a PostgreSQL data directory (and not a fresh one). */
const VERSION_FILE = 'PG_VERSION';

function isDataDirectory(dir: string): boolean {
  return existsSync(join(dir, VERSION_FILE));
}

/**
 * A new data directory from the template. Its VERSION_FILE is copied last: a start killed while
 * copying leaves a directory that the next start copies again. (Not a power loss: nothing here
 * is synced to disk before it.)
 */
function copyTemplate(template: string, dataDir: string): void {
  const marker = join(template, VERSION_FILE);
  cpSync(template, dataDir, { recursive: true, filter: (source) => source !== marker });
  copyFileSync(marker, join(dataDir, VERSION_FILE));
}

/** Arbitrary, fixed key of the advisory lock that serialises migrations across instances. */
const MIGRATION_LOCK_KEY = 7_246_153_001;

export interface PostgresOptions {
  url: string;
  poolSize?: number;
  /** Seconds a new connection may take (default 5): past it, requests waiting for it fail. */
  connectTimeoutSeconds?: number;
  /** Called with every statement sent and its values (diagnostics: round trips, plans). */
  onStatement?: (query: string, parameters: readonly unknown[]) => void;
  /** An OpenTelemetry span for every statement (ops/tracing.ts). */
  trace?: boolean;
}

/**
 * Two changes to how drizzle's queries reach PostgreSQL through postgres.js, each saving a round
 * trip on every transaction.
 *
 * Prepared statements: drizzle sends every query through `unsafe()`, which does not prepare, and
 * postgres.js then describes each statement with parameters before running it (two round trips).
 * Prepared (postgres.js names and caches them per connection by their text), a statement run
 * before takes one. Statements without parameters still use the simple protocol.
 *
 * Pipelined BEGIN: postgres.js's `begin()` waits for BEGIN's answer before running the
 * transaction's first statement. Here BEGIN is sent unawaited on a reserved connection, so it
 * leaves in the same write as the first statement (postgres.js coalesces the writes of a tick);
 * a failed BEGIN fails that statement too. COMMIT, or ROLLBACK on any error, as before.
 *
 * Pipelined COMMIT: a transaction that knows its next statement is its last says so with
 * `commitWithNextStatement(tx)`; COMMIT then leaves in the same write as that statement. Should
 * the statement fail, PostgreSQL answers that COMMIT with a ROLLBACK, and the error reaches the
 * caller as before.
 */
function preparing<T extends postgres.Sql>(client: T, traced = false): T {
  const unsafe = client.unsafe.bind(client);
  client.unsafe = ((query: string, args?: unknown[], options?: object) => {
    const pending = unsafe(query, args as never, { ...options, prepare: true });
    return traced ? traceQuery(query, pending) : pending;
  }) as typeof client.unsafe;
  // A transaction's nested transactions (savepoint) hand their callback a client of their own.
  const savepoint = (client as unknown as Record<string, unknown>)['savepoint'];
  if (typeof savepoint === 'function') {
    (client as unknown as Record<string, unknown>)['savepoint'] = (...args: unknown[]) => {
      const callback = args.pop() as (tx: postgres.Sql) => unknown;
      return (savepoint as (...a: unknown[]) => unknown).call(client, ...args, (tx: postgres.Sql) =>
        callback(preparing(tx, traced)),
      );
    };
  }
  return client;
}

const tracer = trace.getTracer('runstate');

/**
 * A span for a statement, from its sending until its answer, child of whatever span is active
 * (the GraphQL operation's): named by its leading `/* name *\/` comment, else its first keyword.
 * Its text, never its parameters. The query is watched without being run: postgres.js runs a
 * query when its own `then` is called, which this bypasses.
 */
function traceQuery<T extends PromiseLike<unknown>>(query: string, pending: T): T {
  const text = query.trim();
  const name = /^\/\*\s*([\w.-]+)\s*\*\//.exec(text)?.[1] ?? /^\w+/.exec(text)?.[0]?.toUpperCase();
  const span = tracer.startSpan(name ? `db ${name}` : 'db', {
    kind: SpanKind.CLIENT,
    attributes: { 'db.system': 'postgresql', 'db.query.text': text },
  });
  Promise.prototype.then.call(
    pending,
    () => span.end(),
    (error: unknown) => {
      span.recordException(error as Error);
      span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    },
  );
  return pending;
}

const COMMIT_WITH_NEXT = Symbol('commitWithNextStatement');

/**
 * Send COMMIT together with the transaction's next statement, which must be its last (see
 * withPipelinedBegin). A no-op outside such a transaction (PGlite, or no transaction).
 */
export function commitWithNextStatement(tx: Executor): void {
  const client = (tx as unknown as { session?: { client?: Record<symbol, unknown> } }).session
    ?.client;
  const mark = client?.[COMMIT_WITH_NEXT];
  if (typeof mark === 'function') (mark as () => void)();
}

function withPipelinedBegin(client: postgres.Sql, traced: boolean): postgres.Sql {
  client.begin = (async (...args: unknown[]) => {
    const callback = args.pop() as (tx: postgres.Sql) => unknown;
    const mode = typeof args[0] === 'string' ? args[0].replace(/[^a-z ]/gi, '') : '';
    const connection = await client.reserve();
    try {
      const begin = connection.unsafe(`BEGIN ${mode}`).execute();
      begin.catch(() => {});
      const tx = preparing(connection as unknown as postgres.Sql, traced);
      let commitNext = false;
      let committing: Promise<unknown> | null = null;
      const unsafe = tx.unsafe;
      tx.unsafe = ((...args: Parameters<typeof tx.unsafe>) => {
        const query = unsafe(...args);
        if (commitNext) {
          commitNext = false;
          query.execute();
          committing = connection.unsafe('COMMIT').execute();
          committing.catch(() => {});
        }
        return query;
      }) as typeof tx.unsafe;
      (tx as unknown as Record<symbol, () => void>)[COMMIT_WITH_NEXT] = () => {
        commitNext = true;
      };
      const result = await callback(tx);
      await begin;
      await (committing ?? connection.unsafe('COMMIT'));
      return result;
    } catch (error) {
      await connection.unsafe('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      connection.release();
    }
  }) as typeof client.begin;
  return client;
}

/** Connect to a real PostgreSQL through postgres.js. */
export function createPostgresDatabase(options: PostgresOptions): Database {
  const client = postgres(options.url, {
    max: options.poolSize ?? 20,
    // postgres.js's default is 30 s: during an outage every request would wait that long for
    // its 503.
    connect_timeout: options.connectTimeoutSeconds ?? 5,
    // Between reconnects: postgres.js's default grows to 10-20 s after a few failures, and the
    // queries waiting for that connection get no answer meanwhile. At most a second.
    backoff: (retries: number) => Math.min(0.05 * 2 ** retries, 1),
    onnotice: () => {},
    connection: { application_name: 'runstate' },
    ...(options.onStatement
      ? {
          debug: (_c: number, query: string, parameters: unknown[]) =>
            options.onStatement!(query, parameters),
        }
      : {}),
  });
  const traced = options.trace ?? false;
  const db = drizzlePostgres(withPipelinedBegin(preparing(client, traced), traced), {
    schema,
  }) as unknown as Db;
  return {
    db,
    kind: 'postgres',
    async migrate() {
      // drizzle's migrator takes no lock: two instances starting together would both apply the
      // same migration. A session advisory lock on a reserved connection serialises them.
      const lockClient = await client.reserve();
      try {
        await lockClient`SELECT pg_advisory_lock(${MIGRATION_LOCK_KEY})`;
        await migratePostgres(db as never, { migrationsFolder: MIGRATIONS_DIR });
      } finally {
        await lockClient`SELECT pg_advisory_unlock(${MIGRATION_LOCK_KEY})`.catch(() => {});
        lockClient.release();
      }
    },
    async listen(channel, onNotify, onListen) {
      const request = await client.listen(channel, onNotify, onListen);
      return () => request.unlisten();
    },
    async notify(channel, payload) {
      await client`SELECT pg_notify(${channel}, ${payload})`;
    },
    async close() {
      await client.end({ timeout: 5 });
    },
  };
}

export interface PgliteOptions {
  /** Directory the embedded database persists in; `memory://` for a throwaway one. */
  dataDir: string;
  /** The directory a new one starts as a copy of (default PGLITE_TEMPLATE, if built); null: none. */
  template?: string | null;
}

/** Open (or create) the embedded PGlite database. */
export async function createPgliteDatabase(options: PgliteOptions): Promise<Database> {
  const onDisk = !options.dataDir.startsWith('memory://');
  if (onDisk) mkdirSync(options.dataDir, { recursive: true });
  // A new directory starts from the template the build made (a migrated database), which is
  // much faster than PGlite creating one; migrate() then applies whatever is newer.
  const fresh = onDisk && !isDataDirectory(options.dataDir);
  const template = options.template === undefined ? PGLITE_TEMPLATE : options.template;
  if (fresh && template && isDataDirectory(template)) copyTemplate(template, options.dataDir);
  const client = await PGlite.create(options.dataDir, { extensions: { pg_trgm } });
  const db = drizzlePglite(client, { schema }) as unknown as Db;
  return {
    db,
    kind: 'pglite',
    async migrate() {
      // One process owns a PGlite directory, so there is nobody to race.
      await migratePglite(db as never, { migrationsFolder: MIGRATIONS_DIR });
    },
    // One process owns a PGlite database: local commits wake the tail directly.
    async listen(_channel, _onNotify, onListen) {
      onListen();
      return async () => {};
    },
    async notify() {},
    async close() {
      await client.close();
    },
  };
}

/**
 * Rows of a raw `execute()`: postgres.js returns an array, PGlite an object with `rows`.
 * Both drivers hand timestamps over as text and bigints as text or numbers; callers map them.
 */
export async function queryRows<T = Record<string, unknown>>(
  executor: Executor,
  query: SQL,
): Promise<T[]> {
  const result: unknown = await executor.execute(query);
  if (Array.isArray(result)) return result as T[];
  return ((result as { rows?: T[] }).rows ?? []) as T[];
}

/** The driver under drizzle: postgres.js (`unsafe`) or PGlite (`query`). */
function driverOf(db: Db): postgres.Sql | PGlite {
  return (db as unknown as { $client: postgres.Sql | PGlite }).$client;
}

/**
 * Rows of a statement written as fixed text with `$n` parameters, sent straight to the driver
 * (prepared, on postgres.js): for the hottest statements, where building a large `sql` template
 * with drizzle costs more of the service's CPU than running it. On a Db, not in a transaction.
 */
export async function queryText<T = Record<string, unknown>>(
  db: Db,
  text: string,
  params: unknown[],
): Promise<T[]> {
  const client = driverOf(db);
  if ('unsafe' in client) return (await client.unsafe(text, params as never)) as unknown as T[];
  return (await client.query<T>(text, params)).rows;
}

/**
 * queryText's rows as arrays of their values, in the order of the statement's columns (for a
 * row reader's `readValues`): the driver then makes each row an array, not an object with a
 * property per column.
 */
export async function queryValues(db: Db, text: string, params: unknown[]): Promise<unknown[][]> {
  const client = driverOf(db);
  if ('unsafe' in client) return (await client.unsafe(text, params as never).values()) as never;
  return (await client.query<unknown[]>(text, params, { rowMode: 'array' })).rows;
}

/**
 * An array literal (`{"a","b,c"}`) to pass as one parameter cast to `text[]` (or an enum's
 * array): each element quoted, as names may hold commas, quotes and braces.
 */
export function arrayLiteral(values: readonly string[]): string {
  return `{${values.map((v) => `"${v.replace(/["\\]/g, (c) => `\\${c}`)}"`).join(',')}}`;
}

/** Whether the database answers (for readiness checks and tests). */
export async function pingDatabase(executor: Executor): Promise<boolean> {
  const rows = await queryRows<{ ok: number }>(executor, sql`/* ping */ SELECT 1 AS ok`);
  return rows.length === 1;
}
