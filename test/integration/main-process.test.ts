import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startProcess } from '../support/process.js';
import { postGraphQL } from '../support/server.js';

/** Whether any file under `dir` contains `needle`. */
function grepDir(dir: string, needle: string): boolean {
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory() ? grepDir(path, needle) : readFileSync(path).includes(needle))
      return true;
  }
  return false;
}

describe('the service process', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'runstate-main-'));
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const child of children) child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('first start: creates an admin token, prints it once, stores only its hash; serves with it; stops on SIGTERM', async () => {
    const proc = startProcess({ PORT: '0', HOST: '127.0.0.1', RUNSTATE_DATA_DIR: dataDir });
    children.push(proc.child);
    const url = await proc.listening;
    const token = /\b(rst_[A-Za-z0-9_-]{43})\b/.exec(proc.output())?.[1];
    expect(token, proc.output()).toBeDefined();

    const anonymous = await postGraphQL(url, `{ viewer { role } }`, undefined, { token: null });
    expect(anonymous.status).toBe(401);
    expect(anonymous.errors?.[0]?.extensions?.['code']).toBe('UNAUTHENTICATED');
    const created = await postGraphQL<{ createRun: { status: string } }>(
      url,
      `mutation { createRun(input: { project: "proc" }) { status } }`,
      undefined,
      { token },
    );
    expect(created.data?.createRun.status).toBe('CREATED');
    const page = await fetch(url, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('GraphiQL');

    proc.child.kill('SIGTERM');
    expect(await proc.exited).toBe(0);
    expect(proc.output()).toContain('stopped');

    // The secret is nowhere on disk (PGlite keeps the database in dataDir).
    expect(grepDir(dataDir, token!)).toBe(false);

    // A restart creates no second token, and the first still works.
    const again = startProcess({ PORT: '0', HOST: '127.0.0.1', RUNSTATE_DATA_DIR: dataDir });
    children.push(again.child);
    const url2 = await again.listening;
    expect(again.output()).not.toMatch(/rst_[A-Za-z0-9_-]{43}/);
    const viewer = await postGraphQL<{ viewer: { name: string; role: string } }>(
      url2,
      `{ viewer { name role } }`,
      undefined,
      { token },
    );
    expect(viewer.data?.viewer).toEqual({ name: 'admin', role: 'ADMIN' });
    again.child.kill('SIGTERM');
    expect(await again.exited).toBe(0);
  });

  it('with RUNSTATE_AUTH=off, listens on loopback only and says so; refuses a public HOST', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'runstate-noauth-'));
    try {
      const open = startProcess({ PORT: '0', RUNSTATE_DATA_DIR: dir, RUNSTATE_AUTH: 'off' });
      children.push(open.child);
      const url = await open.listening;
      expect(new URL(url).hostname).toBe('127.0.0.1');
      expect(open.output()).toContain('RUNSTATE_AUTH=off');
      const viewer = await postGraphQL<{ viewer: { role: string; authEnabled: boolean } }>(
        url,
        `{ viewer { role authEnabled } }`,
        undefined,
        { token: null },
      );
      expect(viewer.data?.viewer).toEqual({ role: 'ADMIN', authEnabled: false });
      open.child.kill('SIGTERM');
      expect(await open.exited).toBe(0);

      const exposed = startProcess({
        PORT: '0',
        HOST: '0.0.0.0',
        RUNSTATE_DATA_DIR: dir,
        RUNSTATE_AUTH: 'off',
      });
      children.push(exposed.child);
      expect(await exposed.exited).toBe(1);
      expect(exposed.output()).toContain('loopback');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses an invalid configuration with a clear message and exit code 1', async () => {
    const proc = startProcess({ PORT: 'not-a-port', RUNSTATE_DATA_DIR: dataDir });
    children.push(proc.child);
    expect(await proc.exited).toBe(1);
    expect(proc.output()).toContain('PORT');
  });
});
