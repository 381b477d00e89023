#!/usr/bin/env node
// `npx runstate …`: runs the compiled CLI. In a checkout, it compiles first (npm run build) when
// the build is missing or was made from other sources, so a `git pull` or an `npm ci` is never
// served by yesterday's build.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const at = (path) => join(root, path);

/** What `npm run build` writes. */
const OUTPUTS = [
  'dist/src/cli/main.js',
  'dist/pglite-template/PG_VERSION',
  'dist/dashboard/app.js',
];
/** What the build is made from (dependencies through the lockfile). */
const SOURCES = [
  'src',
  'drizzle',
  'scripts',
  'package.json',
  'package-lock.json',
  'tsconfig.json',
  'tsconfig.build.json',
];
/** The fingerprint of the sources the build was made from. */
const STAMP = at('dist/.sources-sha256');
/** Held by the one launcher that builds; others wait for it. */
const LOCK = at('dist/.build-lock');
const STALE_LOCK_MS = 5 * 60_000;

function filesIn(path) {
  const stat = statSync(path, { throwIfNoEntry: false });
  if (!stat) return [];
  if (!stat.isDirectory()) return [path];
  return readdirSync(path)
    .sort()
    .flatMap((entry) => filesIn(join(path, entry)));
}

/**
 * A hash of the sources' names and contents. Contents, not times: a copy that keeps old times
 * (cp -p, rsync, tar) or a clock in the future must not fool it.
 */
function fingerprint() {
  const hash = createHash('sha256');
  for (const file of SOURCES.flatMap((path) => filesIn(at(path)))) {
    hash.update(`${relative(root, file)}\0`);
    hash.update(readFileSync(file));
    hash.update('\0');
  }
  return hash.digest('hex');
}

/** Why a build is needed, or null. */
function needsBuild(sources) {
  if (OUTPUTS.some((path) => !existsSync(at(path)))) return 'first run';
  // A copy without the sources (the Docker image) runs what it was given.
  if (sources == null) return null;
  const stamp = existsSync(STAMP) ? readFileSync(STAMP, 'utf8') : null;
  if (stamp == null) return 'no record of what the build was made from';
  return stamp === sources ? null : 'sources changed';
}

const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** Take the build lock, waiting while another launcher builds. */
function lock() {
  mkdirSync(at('dist'), { recursive: true });
  let told = false;
  for (;;) {
    try {
      mkdirSync(LOCK);
      return;
    } catch (error) {
      if (error.code !== 'EEXIST') throw error;
    }
    const since = statSync(LOCK, { throwIfNoEntry: false })?.mtimeMs;
    if (since != null && Date.now() - since > STALE_LOCK_MS) {
      rmSync(LOCK, { recursive: true, force: true }); // its builder died
      continue;
    }
    if (!told) process.stderr.write('runstate: waiting for another build to finish…\n');
    told = true;
    sleep(250);
  }
}

const hasSources = existsSync(at('src'));
let failed = null;
if (needsBuild(hasSources ? fingerprint() : null)) {
  lock();
  try {
    // Taken before the build: an edit made while it runs is built next time.
    const sources = hasSources ? fingerprint() : null;
    const reason = needsBuild(sources); // another launcher may have built meanwhile
    if (reason) {
      process.stderr.write(`runstate: ${reason}, compiling (npm run build)…\n`);
      // The build's own lines go to stderr: stdout is the command's.
      const build = spawnSync('npm', ['run', 'build', '--silent'], {
        cwd: root,
        stdio: ['ignore', process.stderr, 'inherit'],
      });
      if (build.status !== 0) failed = build.status ?? 1;
      else if (sources != null) writeFileSync(STAMP, sources);
    }
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}
if (failed != null) process.exit(failed);
await import(new URL('../dist/src/cli/main.js', import.meta.url).href);
