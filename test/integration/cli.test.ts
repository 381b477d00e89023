import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { withEmptyDatabase } from '../support/empty-database.js';
import {
  createRun,
  dataOf,
  latestCursorOf,
  transitionRun,
  waitUntil,
} from '../support/operations.js';
import {
  postGraphQL,
  startServer,
  TEST_ADMIN_TOKEN,
  uniqueProject,
  type TestServer,
} from '../support/server.js';

describe('the runstate CLI', () => {
  let server: TestServer;
  let env: Record<string, string>;
  beforeAll(async () => {
    server = await startServer();
    env = { RUNSTATE_URL: server.url, RUNSTATE_TOKEN: TEST_ADMIN_TOKEN };
  });
  afterAll(() => server.stop());

  it('runs: a table of a project’s runs, with status colors from the lifecycle and progress bars', async () => {
    const project = uniqueProject('cli');
    const idle = await createRun(server, { project, name: 'idle' });
    const busy = await createRun(server, { project, name: 'busy' });
    await transitionRun(server, { id: busy.id, to: 'RUNNING' });
    await server.gql(
      `mutation($id: ID!) { reportProgress(input: { id: $id, progress: 0.5 }) { id } }`,
      {
        id: busy.id,
      },
    );

    const plain = runCli(['runs', '--project', project], env);
    expect(await plain.exited).toBe(0);
    const lines = plain.stdout().trim().split('\n');
    expect(lines[0]).toMatch(/^ID\s+PROJECT\s+NAME\s+STATUS\s+PROGRESS\s+UPDATED$/);
    expect(lines).toHaveLength(3);
    expect(lines[1]).toContain(busy.id); // newest first
    expect(lines[1]).toMatch(/busy\s+RUNNING\s+\[#####-----\]\s+50%/);
    expect(lines[2]).toMatch(new RegExp(`^${idle.id}\\s+${project}\\s+idle\\s+CREATED`));
    expect(plain.stdout()).not.toContain('\x1b['); // not a terminal: no colors

    const colored = runCli(['runs', '--project', project], { ...env, FORCE_COLOR: '1' });
    expect(await colored.exited).toBe(0);
    expect(colored.stdout()).toContain('\x1b[1;38;2;46;119;170mRUNNING\x1b[0m'); // #2e77aa

    const filtered = runCli(['runs', '--project', project, '--status', 'created'], env);
    expect(await filtered.exited).toBe(0);
    expect(filtered.stdout().trim().split('\n')).toHaveLength(2);
  });

  it('runs --all pages through every run and shows its progress', async () => {
    const project = uniqueProject('many');
    for (let i = 0; i < 4; i++) await createRun(server, { project });
    const all = runCli(['runs', '--project', project, '--all', '--first', '3'], env);
    expect(await all.exited).toBe(0);
    expect(all.stdout().trim().split('\n')).toHaveLength(5); // header and four runs
    expect(all.stderr()).toContain('fetched 3 runs…');
  });

  it('watch: a live line per change, resumable with --after when stopped', async () => {
    const project = uniqueProject('watch');
    const run = await createRun(server, { project, name: 'w' });
    const after = await latestCursorOf(server, run.id);
    const watching = runCli(['watch', '--project', project, '--after', after], env);
    await waitUntil('watching', () => watching.stderr().includes('watching'));
    await transitionRun(server, { id: run.id, to: 'QUEUED' });
    await transitionRun(server, {
      id: run.id,
      to: 'RUNNING',
      reason: 'STARTED',
      message: 'on node-3',
    } as never);
    await waitUntil('two lines', () => watching.stdout().trim().split('\n').length >= 2);
    watching.signal('SIGINT');
    expect(await watching.exited).toBe(0);
    const lines = watching.stdout().trim().split('\n');
    expect(lines[0]).toMatch(new RegExp(`${project}/w\\s+CREATED → QUEUED\\s+v2 ${run.id}$`));
    expect(lines[1]).toMatch(/QUEUED → RUNNING\s+STARTED: on node-3\s+v3/);
    expect(watching.stderr()).toMatch(/resume with --after \S+/);
  });

  it('token create: prints a new token’s secret once; it works with its role and projects', async () => {
    const project = uniqueProject('tok');
    const created = runCli(
      ['token', 'create', '--name', 'ci-reader', '--role', 'read', '--project', project],
      env,
    );
    expect(await created.exited).toBe(0);
    const token = created.stdout().trim();
    expect(token).toMatch(/^rst_[A-Za-z0-9_-]{43}$/);
    expect(created.stderr()).toContain('READ token "ci-reader"');
    const viewer = await postGraphQL<{
      viewer: { name: string; role: string; projects: string[] };
    }>(server.url, `{ viewer { name role projects } }`, undefined, { token });
    expect(dataOf(viewer).viewer).toEqual({ name: 'ci-reader', role: 'READ', projects: [project] });
  });

  it('migrate: applies every pending migration to a new database with progress, then finds none', async () => {
    await withEmptyDatabase('cli', async (url) => {
      const first = runCli(['migrate'], { DATABASE_URL: url });
      expect(await first.exited).toBe(0);
      expect(first.stderr()).toMatch(/\d+ pending: 0000_extensions, 0001_core/);
      expect(first.stderr()).toMatch(/applying… done in \d+ ms/);
      expect(first.stdout()).toMatch(/applied \d+ migration\(s\)/);
      const again = runCli(['migrate'], { DATABASE_URL: url });
      expect(await again.exited).toBe(0);
      expect(again.stdout()).toContain('up to date');
    });
  });

  it('serve: serves (ready on /ready) until SIGTERM, then drains and exits 0', async () => {
    const served = runCli(['serve'], {
      DATABASE_URL: inject('databaseUrl'),
      RUNSTATE_ADMIN_TOKEN: TEST_ADMIN_TOKEN,
      PORT: '0',
      HOST: '127.0.0.1',
    });
    await waitUntil('listening', () => /"url":"http/.test(served.stdout()), 30_000);
    const url = /"url":"(http[^"]+)"/.exec(served.stdout())![1]!;
    const ready = await fetch(new URL('/ready', url));
    expect(ready.status).toBe(200);
    served.signal('SIGTERM');
    expect(await served.exited).toBe(0);
    expect(served.stdout()).toContain('draining, then stopping');
  });

  it('refuses bad usage with exit code 2 and says why', async () => {
    const badStatus = runCli(['runs', '--status', 'NOPE'], env);
    expect(await badStatus.exited).toBe(2);
    expect(badStatus.stderr()).toContain('unknown status "NOPE"');
    const unknown = runCli(['frobnicate'], env);
    expect(await unknown.exited).toBe(2);
    const badToken = runCli(['runs'], { ...env, RUNSTATE_TOKEN: 'rst_wrong' });
    expect(await badToken.exited).toBe(1);
    expect(badToken.stderr()).toMatch(/runstate: .*token/i);
  });
});
