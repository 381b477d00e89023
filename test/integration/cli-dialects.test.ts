import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getStatusInfo } from '../../src/lifecycle/lifecycle.js';
import { finished, runCli } from '../support/cli.js';
import { createRun, latestCursorOf, transitionRun, waitUntil } from '../support/operations.js';
import {
  startServer,
  TEST_ADMIN_TOKEN,
  uniqueProject,
  type TestServer,
} from '../support/server.js';

/** The STATUS cell of each run's row, by run name. */
function statusByName(stdout: string): Record<string, string> {
  const [header, ...rows] = stdout.trim().split('\n');
  expect(header).toMatch(/^ID\s+PROJECT\s+NAME\s+STATUS\s+PROGRESS\s+UPDATED$/);
  return Object.fromEntries(rows.map((row) => row.split(/\s+/)).map((c) => [c[2], c[3]]));
}

describe('the runstate CLI speaks dialects', () => {
  let server: TestServer;
  let env: Record<string, string>;
  beforeAll(async () => {
    server = await startServer();
    env = { RUNSTATE_URL: server.url, RUNSTATE_TOKEN: TEST_ADMIN_TOKEN };
  });
  afterAll(() => server.stop());

  it('runs --dialect perceval: each run’s status in Perceval’s names (SUCCEEDED is SUCCESS)', async () => {
    const project = uniqueProject('cli-dialect');
    const done = await createRun(server, { project, name: 'done' });
    await transitionRun(server, { id: done.id, to: 'RUNNING' });
    await transitionRun(server, { id: done.id, to: 'SUCCEEDED' });
    const broken = await createRun(server, { project, name: 'broken' });
    await transitionRun(server, { id: broken.id, to: 'RUNNING' });
    await transitionRun(server, { id: broken.id, to: 'FAILED' });
    await createRun(server, { project, name: 'new' });

    // Four CLI processes at once.
    const [perceval, parsl, plain, colored] = await Promise.all([
      finished(runCli(['runs', '--project', project, '--dialect', 'perceval'], env)),
      finished(runCli(['runs', '--project', project, '--dialect', 'Parsl'], env)), // any case
      finished(runCli(['runs', '--project', project], env)),
      finished(
        runCli(['runs', '--project', project, '--dialect', 'perceval'], {
          ...env,
          FORCE_COLOR: '1',
        }),
      ),
    ]);
    expect(perceval.code).toBe(0);
    expect(statusByName(perceval.stdout)).toEqual({
      done: 'SUCCESS',
      broken: 'ERROR',
      new: 'WAITING',
    });
    expect(parsl.code).toBe(0);
    expect(statusByName(parsl.stdout)).toEqual({
      done: 'exec_done',
      broken: 'failed',
      new: 'pending',
    });
    // Without --dialect: runstate's names, as before.
    expect(plain.code).toBe(0);
    expect(statusByName(plain.stdout)).toEqual({
      done: 'SUCCEEDED',
      broken: 'FAILED',
      new: 'CREATED',
    });
    // Colored as the runstate status the native name stands for.
    expect(colored.code).toBe(0);
    const [r, g, b] = [1, 3, 5].map((i) =>
      Number.parseInt(getStatusInfo('SUCCEEDED').color.slice(i, i + 2), 16),
    );
    expect(colored.stdout).toContain(`\x1b[1;38;2;${r};${g};${b}mSUCCESS\x1b[0m`);
  });

  it('runs --dialect perceval --predicate completed: only the runs Perceval calls completed', async () => {
    const project = uniqueProject('cli-pred');
    const done = await createRun(server, { project, name: 'done', dialect: 'PERCEVAL' });
    await transitionRun(server, { id: done.id, native: 'RUNNING' });
    await transitionRun(server, { id: done.id, native: 'completed' });
    const busy = await createRun(server, { project, name: 'busy', dialect: 'PERCEVAL' });
    await transitionRun(server, { id: busy.id, native: 'RUNNING' });

    const [completed, running] = await Promise.all([
      finished(
        runCli(
          ['runs', '--project', project, '--dialect', 'perceval', '--predicate', 'completed'],
          env,
        ),
      ),
      finished(
        runCli(
          ['runs', '--project', project, '--dialect', 'PERCEVAL', '--predicate', 'running'],
          env,
        ),
      ),
    ]);
    expect(completed.code).toBe(0);
    expect(statusByName(completed.stdout)).toEqual({ done: 'SUCCESS' });
    expect(running.code).toBe(0);
    expect(statusByName(running.stdout)).toEqual({ busy: 'RUNNING' });
  });

  it('watch --dialect parsl: each change’s new status in Parsl’s names', async () => {
    const project = uniqueProject('cli-watch');
    const run = await createRun(server, { project, name: 'task', dialect: 'PARSL' });
    const after = await latestCursorOf(server, run.id);
    const watching = runCli(
      ['watch', '--project', project, '--after', after, '--dialect', 'parsl'],
      env,
    );
    await waitUntil('watching', () => watching.stderr().includes('watching'));
    await transitionRun(server, { id: run.id, native: 'launched' });
    await transitionRun(server, { id: run.id, native: 'exec_done' });
    await waitUntil('two lines', () => watching.stdout().trim().split('\n').length >= 2);
    watching.signal('SIGINT');
    expect(await watching.exited).toBe(0);
    const lines = watching.stdout().trim().split('\n');
    expect(lines[0]).toMatch(
      new RegExp(`${project}/task\\s+launched\\s+\\(CREATED → SCHEDULED\\)`),
    );
    expect(lines[1]).toMatch(/task\s+exec_done\s+\(SCHEDULED → SUCCEEDED\)\s+v3/);
  });

  it('an unknown dialect or predicate is a usage error (exit 2) that lists the names', async () => {
    const usage = (args: string[]) => finished(runCli(args, env));
    const [nope, watchNope, badPredicate, noDialect] = await Promise.all([
      usage(['runs', '--dialect', 'nope']),
      usage(['watch', '--dialect', 'nope']),
      usage(['runs', '--dialect', 'perceval', '--predicate', 'done']),
      usage(['runs', '--predicate', 'completed']),
    ]);
    expect(nope.code).toBe(2);
    expect(nope.stderr).toContain('unknown dialect "nope"');
    expect(nope.stderr).toMatch(/runstate, polyaxon, perceval, parsl, canary/);
    expect(nope.stderr).toContain('run `runstate --help` for usage');
    expect(nope.stdout).toBe('');

    expect(watchNope.code).toBe(2);
    expect(watchNope.stderr).toContain('unknown dialect "nope"');

    expect(badPredicate.code).toBe(2);
    expect(badPredicate.stderr).toContain('unknown PERCEVAL predicate "done"');
    expect(badPredicate.stderr).toContain('maybe_completed');

    expect(noDialect.code).toBe(2);
    expect(noDialect.stderr).toContain('--predicate needs --dialect');
  });

  it('--help tells of --dialect and --predicate', async () => {
    const help = runCli(['--help'], env);
    expect(await help.exited).toBe(0);
    expect(help.stdout()).toMatch(/runs \[options\][\s\S]*--dialect D[\s\S]*--predicate P/);
    expect(help.stdout()).toMatch(/watch \[options\][\s\S]*--dialect D/);
  });
});
