#!/usr/bin/env node
// `npx runstate …`: runs the compiled CLI. In a checkout, it compiles first (npm run build) when
// the build is missing or older than a source it is made from, so a `git pull` is never served
// by yesterday's code.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const at = (path) => join(root, path);

/** What `npm run build` writes, in the order it writes them. */
const OUTPUTS = ['dist/src/cli/main.js', 'dist/pglite-template.tar.gz', 'dist/dashboard/app.js'];
/** What the build reads. */
const SOURCES = [
  'src',
  'drizzle',
  'scripts',
  'package.json',
  'tsconfig.json',
  'tsconfig.build.json',
];

const mtime = (path) => (existsSync(path) ? statSync(path).mtimeMs : null);

function newestIn(path) {
  const stat = statSync(path, { throwIfNoEntry: false });
  if (!stat) return 0;
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = stat.mtimeMs; // a deleted file shows only as its directory's change
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestIn(join(path, entry)));
  return newest;
}

function needsBuild() {
  const built = OUTPUTS.map((path) => mtime(at(path)));
  if (built.includes(null)) return 'first run';
  // An installed package ships dist only: nothing to compare with.
  if (!existsSync(at('src'))) return null;
  const oldest = Math.min(...built);
  return SOURCES.some((path) => newestIn(at(path)) > oldest) ? 'sources changed' : null;
}

const reason = needsBuild();
if (reason) {
  process.stderr.write(`runstate: ${reason}, compiling (npm run build)…\n`);
  const build = spawnSync('npm', ['run', 'build', '--silent'], {
    cwd: root,
    stdio: ['ignore', process.stderr, 'inherit'],
  });
  if (build.status !== 0) process.exit(build.status ?? 1);
}
await import(new URL('../dist/src/cli/main.js', import.meta.url).href);
