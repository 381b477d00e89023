import { randomBytes } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import postgres from 'postgres';
import { createPostgresDatabase } from '../../src/db/client.js';
import { initCluster } from '../../test/support/throwaway-postgres.js';
import { createGraphQLClient } from './http.js';

const root = new URL('../..', import.meta.url).pathname;

/** The admin token the benchmarked service adopts. */
export const BENCH_TOKEN = 'rst_bench-admin-token-000000000000000000';

/**
 * The PostgreSQL server to measure on: BENCH_DATABASE_URL, DATABASE_URL, or this machine's at
 * 127.0.0.1:5432; an embedded one if none answers (say so in the report: it is not tuned).
 */
export async function openCluster(): Promise<{
  url: string;
  embedded: boolean;
  stop(): Promise<void>;
}> {
  const given =
    process.env.BENCH_DATABASE_URL ||
    process.env.DATABASE_URL ||
    'postgres://postgres@127.0.0.1:5432/postgres';
  const probe = postgres(given, { max: 1, connect_timeout: 3, onnotice: () => {} });
  try {
    await probe`SELECT 1`;
    return { url: given, embedded: false, stop: async () => {} };
  } catch {
    const cluster = await initCluster();
    await cluster.start();
    return { url: cluster.url(), embedded: true, stop: () => cluster.remove() };
  } finally {
    await probe.end({ timeout: 1 });
  }
}

/** A fresh, migrated database on the cluster; `drop()` removes it. */
export async function createBenchDatabase(clusterUrl: string) {
  const name = `runstate_bench_${randomBytes(4).toString('hex')}`;
  const admin = postgres(clusterUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE DATABASE ${name}`);
  const url = new URL(clusterUrl);
  url.pathname = `/${name}`;
  const database = createPostgresDatabase({ url: url.toString(), poolSize: 2 });
  await database.migrate();
  await database.close();
  return {
    url: url.toString(),
    async drop() {
      await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end({ timeout: 5 });
    },
  };
}

/**
 * Have PostgreSQL write out what the last scenario left dirty (a million-run table filled and
 * dropped), so the next scenario does not measure those writes; answers the milliseconds it
 * took, or null where CHECKPOINT is not allowed (PostgreSQL 15: superuser or pg_checkpoint).
 */
export async function settleCluster(clusterUrl: string): Promise<number | null> {
  const sql = postgres(clusterUrl, { max: 1, onnotice: () => {} });
  try {
    const started = performance.now();
    await sql`CHECKPOINT`;
    return performance.now() - started;
  } catch {
    return null;
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** What the report says about the machine and the database server. */
export async function describeEnvironment(databaseUrl: string, embedded: boolean) {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  const [{ version }] = (await sql`SELECT version()`) as unknown as [{ version: string }];
  const settings = (await sql`
    SELECT name, setting, unit FROM pg_settings
    WHERE name IN ('shared_buffers', 'synchronous_commit', 'fsync', 'max_connections',
                   'wal_level', 'work_mem', 'effective_cache_size', 'commit_delay')
    ORDER BY name`) as unknown as { name: string; setting: string; unit: string | null }[];
  await sql.end();
  const cpu = cpus();
  return {
    machine: `${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB`,
    node: process.version,
    postgres: `${version.split(' on ')[0]}${embedded ? ' (a throwaway cluster, not this machine’s server)' : ''}`,
    settings: settings.map((s) => `${s.name}=${s.setting}${s.unit ? ` ${s.unit}` : ''}`).join(', '),
  };
}

export interface ServiceProcess {
  url: string;
  wsUrl: string;
  pid: number;
  stop(): Promise<void>;
}

/** Start the built service (`dist/src/main.js`) as its own process, as in production. */
export async function startService(
  databaseUrl: string,
  env: Record<string, string> = {},
): Promise<ServiceProcess> {
  // BENCH_PROFILE=dir writes a V8 CPU profile of the service there (node --cpu-prof).
  const profile = process.env.BENCH_PROFILE
    ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`]
    : [];
  const child: ChildProcess = spawn(process.execPath, [...profile, 'dist/src/main.js'], {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'production',
      PORT: '0',
      HOST: '127.0.0.1',
      DATABASE_URL: databaseUrl,
      RUNSTATE_ADMIN_TOKEN: BENCH_TOKEN,
      // The benchmark is one token at full speed: the per-token limits are not what it measures.
      MUTATION_RATE_LIMIT: '0',
      MAX_SUBSCRIPTIONS_PER_CONNECTION: '100000',
      MAX_SUBSCRIPTIONS_PER_TOKEN: '1000000',
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return spawnAndWaitForUrl(child, /"url":"(http:[^"]+)"/);
}

/** Start a process that prints its URL, and wait for it. */
export async function spawnAndWaitForUrl(
  child: ChildProcess,
  pattern: RegExp,
): Promise<ServiceProcess> {
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    // A process that did not come up is not left behind.
    const fail = (error: Error) => {
      child.kill('SIGKILL');
      reject(error);
    };
    const timer = setTimeout(() => fail(new Error(`no URL within 60 s:\n${output}`)), 60_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = pattern.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', (code) => fail(new Error(`exited (${code}) before listening:\n${output}`)));
  });
  // Keep draining its output so it never blocks on a full pipe.
  child.stdout!.resume();
  return {
    url,
    wsUrl: url.replace(/^http/, 'ws'),
    pid: child.pid!,
    async stop() {
      if (child.exitCode != null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * A scenario's usual setting: a fresh database with the service started on it, a GraphQL client
 * to it and a bare postgres.js pool for the baseline (`connections` each), all closed and the
 * database dropped afterwards, whatever happens.
 */
export async function withBenchService<T>(
  clusterUrl: string,
  connections: number,
  work: (bench: {
    databaseUrl: string;
    service: ServiceProcess;
    client: ReturnType<typeof createGraphQLClient>;
    sql: postgres.Sql;
  }) => Promise<T>,
): Promise<T> {
  const database = await createBenchDatabase(clusterUrl);
  const service = await startService(database.url);
  const client = createGraphQLClient(service.url, BENCH_TOKEN, connections);
  const sql = postgres(database.url, { max: connections, onnotice: () => {} });
  try {
    return await work({ databaseUrl: database.url, service, client, sql });
  } finally {
    client.close();
    await sql.end({ timeout: 5 });
    await service.stop();
    await database.drop();
  }
}
