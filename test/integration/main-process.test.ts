import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { postGraphQL } from '../support/server.js';

const root = new URL('../..', import.meta.url).pathname;

/** Start src/main.ts as `npm start` would, with the given environment (no DATABASE_URL: PGlite). */
function startProcess(env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const listening = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no start within 30 s:\n${output}`)), 30_000);
    child.stdout.on('data', () => {
      const match = /"url":"(http:[^"]+)"/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    void exited.then(() => reject(new Error(`exited before listening:\n${output}`)));
  });
  listening.catch(() => {}); // awaited only by tests that expect a start
  return { child, listening, exited, output: () => output };
}

describe('the service process', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'runstate-main-'));
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const child of children) child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('starts on the embedded database with nothing configured but a port and a directory, serves, and stops on SIGTERM', async () => {
    const proc = startProcess({ PORT: '0', HOST: '127.0.0.1', RUNSTATE_DATA_DIR: dataDir });
    children.push(proc.child);
    const url = await proc.listening;
    const created = await postGraphQL<{ createRun: { status: string } }>(
      url,
      `mutation { createRun(input: { project: "proc" }) { status } }`,
    );
    expect(created.data?.createRun.status).toBe('CREATED');
    const page = await fetch(url, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('GraphiQL');

    proc.child.kill('SIGTERM');
    expect(await proc.exited).toBe(0);
    expect(proc.output()).toContain('stopped');
  });

  it('refuses an invalid configuration with a clear message and exit code 1', async () => {
    const proc = startProcess({ PORT: 'not-a-port', RUNSTATE_DATA_DIR: dataDir });
    children.push(proc.child);
    expect(await proc.exited).toBe(1);
    expect(proc.output()).toContain('PORT');
  });
});
