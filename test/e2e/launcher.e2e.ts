import { spawn } from 'node:child_process';
import {
  cpSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';

// `npx runstate` runs bin/runstate.js. In a checkout it compiles on first use, and again when a
// source is newer than the build. Tested in a copy of the checkout (sharing node_modules), so
// the repository's own dist is never touched; it builds twice, which is why it lives here and
// not in `npm test`.

let checkout: string;
beforeAll(() => {
  checkout = mkdtempSync(join(tmpdir(), 'runstate-launcher-'));
  for (const path of [
    'bin',
    'src',
    'drizzle',
    'scripts',
    'package.json',
    'package-lock.json',
    'tsconfig.json',
    'tsconfig.build.json',
  ])
    cpSync(path, join(checkout, path), { recursive: true });
  symlinkSync(join(process.cwd(), 'node_modules'), join(checkout, 'node_modules'), 'dir');
});
afterAll(() => {
  rmSync(checkout, { recursive: true, force: true });
});

function runstate(...args: string[]) {
  const child = spawn(process.execPath, ['bin/runstate.js', ...args], {
    cwd: checkout,
    env: { ...process.env, NO_COLOR: '1' },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code) => resolve({ code, stdout, stderr })),
  );
}

it('compiles on first use, not again while the build is current, again after a source changes, and once for two launches at a time', async () => {
  const first = await runstate('--help');
  expect(first.stderr).toContain('first run, compiling');
  expect(first.code).toBe(0);
  // The build's own output goes to stderr: stdout is the command's alone.
  expect(first.stdout).toMatch(/^runstate: the run-status service/);

  const second = await runstate('--help');
  expect(second.code).toBe(0);
  expect(second.stderr).toBe('');
  expect(second.stdout).toBe(first.stdout);

  // An edit, its file's time set back before the build (as cp -p or tar may leave it).
  const cli = join(checkout, 'src/cli/main.ts');
  const source = readFileSync(cli, 'utf8');
  expect(source).toContain('the run-status service and its command line');
  writeFileSync(
    cli,
    source.replace('the run-status service and its command line', 'an edited command line'),
  );
  utimesSync(cli, new Date(2001, 0, 1), new Date(2001, 0, 1));
  const third = await runstate('--help');
  expect(third.stderr).toContain('sources changed, compiling');
  expect(third.code).toBe(0);
  expect(third.stdout).toMatch(/^runstate: an edited command line/);

  // Two launches after a change: one builds, the other waits for it and builds nothing.
  writeFileSync(
    cli,
    source.replace('the run-status service and its command line', 'a twice-edited command line'),
  );
  const both = await Promise.all([runstate('--help'), runstate('--help')]);
  for (const run of both) {
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^runstate: a twice-edited command line/);
  }
  expect(both.filter((run) => run.stderr.includes('compiling'))).toHaveLength(1);
}, 300_000);
