import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRunstateClient, type RunstateClient } from '../../src/client/index.js';
import { getStatusInfo } from '../../src/lifecycle/lifecycle.js';
import { finished, runCli } from '../support/cli.js';
import {
  startServer,
  TEST_ADMIN_TOKEN,
  uniqueProject,
  type TestServer,
} from '../support/server.js';

/** Text without its colors. */
// eslint-disable-next-line no-control-regex
const plain = (text: string) => text.replace(/\x1b\[[0-9;]*m/g, '');

/** The lines of a `show` output's section that starts with a header line matching `header`. */
function section(stdout: string, header: RegExp): string[] {
  const lines = stdout.split('\n');
  const start = lines.findIndex((line) => header.test(line));
  expect(start, `a section headed ${header}`).toBeGreaterThanOrEqual(0);
  const end = lines.findIndex((line, i) => i > start && line.trim() === '');
  return lines.slice(start, end < 0 ? undefined : end);
}

describe('the runstate CLI shows pipelines', () => {
  let server: TestServer;
  let client: RunstateClient;
  let env: Record<string, string>;
  beforeAll(async () => {
    server = await startServer();
    client = createRunstateClient({ url: server.url, token: TEST_ADMIN_TOKEN });
    env = { RUNSTATE_URL: server.url, RUNSTATE_TOKEN: TEST_ADMIN_TOKEN };
  });
  afterAll(async () => {
    await client.close();
    await server.stop();
  });

  it('runs --parent lists exactly the steps; show prints a run, its steps with their conditions, and its history', async () => {
    const project = uniqueProject('cli-dag');
    const other = await client.createRun({ project, name: 'unrelated' });
    const p = await client.createPipeline({ project, name: 'dag', rollup: true }, [
      { op: 'prepare' },
      { op: 'train', dependsOn: ['ops.prepare'] },
      { op: 'diagnose', dependencies: [{ ref: 'ops.train', when: ['FAILED'] }] },
      { op: 'cleanup', dependencies: [{ ref: 'ops.diagnose', when: ['SUCCEEDED', 'FAILED'] }] },
      // A Canary case: its status is shown in Canary's names too.
      {
        op: 'publish',
        dialect: 'CANARY',
        dependencies: [{ ref: 'ops.train', when: ['SUCCEEDED'] }],
      },
    ]);
    // A step of a step: not a step of the pipeline.
    const nested = await p.steps.prepare.step('download');
    const { prepare, train, diagnose, cleanup, publish } = p.steps;
    await prepare.start();
    await prepare.progress(1, 'fetched');
    await prepare.succeed();
    await train.start();
    await train.progress(0.5, 'epoch 2');
    await train.fail('loss diverged');

    const [show, step, steps] = await Promise.all([
      finished(runCli(['show', p.parent.id], { ...env, FORCE_COLOR: '1' })),
      finished(runCli(['show', publish.id], env)),
      finished(runCli(['runs', '--parent', p.parent.id], env)),
    ]);

    // runs --parent: the five steps, in the order they were made, with their ops.
    expect(steps.code).toBe(0);
    const rows = steps.stdout.trim().split('\n');
    expect(rows[0]).toMatch(/^ID\s+OP\s+NAME\s+STATUS\s+PROGRESS\s+UPDATED$/);
    expect(rows.slice(1).map((row) => row.split(/\s+/).slice(0, 2))).toEqual([
      [prepare.id, 'prepare'],
      [train.id, 'train'],
      [diagnose.id, 'diagnose'],
      [cleanup.id, 'cleanup'],
      [publish.id, 'publish'],
    ]);
    expect(rows[2]).toMatch(/train\s+FAILED\s+\[#####-----\]\s+50%/);
    for (const id of [p.parent.id, other.id, nested.id]) expect(steps.stdout).not.toContain(id);

    // show PARENT: the run, its steps (with counts and conditions), its history.
    expect(show.code).toBe(0);
    const [r, g, b] = [1, 3, 5].map((i) =>
      Number.parseInt(getStatusInfo('RUNNING').color.slice(i, i + 2), 16),
    );
    expect(show.stdout).toContain(`\x1b[1;38;2;${r};${g};${b}mRUNNING\x1b[0m`);
    const text = plain(show.stdout);
    expect(text).toMatch(new RegExp(`^run\\s+${p.parent.id}$`, 'm'));
    expect(text).toMatch(/^name\s+dag$/m);
    expect(text).toMatch(/^status\s+RUNNING$/m);
    expect(text).toMatch(/^rollup\s+yes/m);
    expect(text).toMatch(
      /^steps\s+5: 1 CREATED, 1 QUEUED, 1 SUCCEEDED, 1 FAILED, 1 UPSTREAM_FAILED$/m,
    );
    expect(text).not.toMatch(/^(op|parent|blocked|scheduled)\s/m);
    const table = section(text, /^OP\s+STATUS\s+PROGRESS\s+UPSTREAM\s+ID$/);
    expect(table.slice(1)).toHaveLength(5);
    expect(table[1]).toMatch(
      new RegExp(`^prepare\\s+SUCCEEDED\\s+\\[##########\\] 100%\\s+${prepare.id}$`),
    );
    expect(table[2]).toMatch(
      /^train\s+FAILED\s+\[#####-----\]\s+50%\s+prepare=SUCCEEDED \(met\)\s/,
    );
    expect(table[3]).toMatch(/^diagnose\s+QUEUED\s+train=FAILED \(met\)\s/);
    expect(table[4]).toMatch(/^cleanup\s+CREATED\s+diagnose=SUCCEEDED\|FAILED \(waiting\)\s/);
    expect(table[5]).toMatch(
      new RegExp(
        `^publish\\s+UPSTREAM_FAILED  not_run \\(canary\\)\\s+train=SUCCEEDED \\(never\\)\\s+${publish.id}$`,
      ),
    );
    const history = section(text, /^TIME\s+CHANGE\s+REASON\s+MESSAGE$/);
    expect(history.slice(1)).toHaveLength(2);
    expect(history[1]).toMatch(/^\S+Z\s+CREATED\s+CREATED$/);
    expect(history[2]).toMatch(/^\S+Z\s+CREATED → RUNNING\s+CHILD_RUNNING$/);

    // show STEP: its op, parent, native status, why it failed upstream and its own history.
    expect(step.code).toBe(0);
    expect(step.stdout).not.toContain('\x1b['); // not a terminal: no colors
    expect(step.stdout).toMatch(/^status\s+UPSTREAM_FAILED {2}not_run \(canary\)$/m);
    expect(step.stdout).toMatch(/^op\s+publish$/m);
    expect(step.stdout).toMatch(new RegExp(`^parent\\s+${p.parent.id}  dag$`, 'm'));
    expect(step.stdout).toMatch(/^upstream\s+train=SUCCEEDED \(never\)$/m);
    expect(step.stdout).toMatch(new RegExp(`^blocked\\s+.*${train.id}`, 'm'));
    expect(step.stdout).toMatch(/^finished\s+\S+Z$/m);
    expect(step.stdout).not.toMatch(/^message\s/m); // the same as blocked: said once
    expect(step.stdout).not.toMatch(/^(steps|OP)\s/m); // no steps of its own
    const stepHistory = section(step.stdout, /^TIME\s+CHANGE/);
    expect(stepHistory.slice(1).map((line) => line.split(/\s{2,}/).slice(1, 3))).toEqual([
      ['CREATED', 'CREATED'],
      ['CREATED → UPSTREAM_FAILED', expect.stringMatching(/^UPSTREAM/)],
    ]);
  });

  it('show and runs --parent: a malformed id is a usage error (2), an unknown one an error (1); --help tells of both', async () => {
    const unknown = globalThis.crypto.randomUUID();
    const [malformed, missing, noParent, help] = await Promise.all([
      finished(runCli(['runs', '--parent', 'nope'], env)),
      finished(runCli(['show', unknown], env)),
      finished(runCli(['runs', '--parent', unknown], env)),
      finished(runCli(['--help'], env)),
    ]);
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toContain('--parent: "nope" is not a run id');
    expect(malformed.stderr).toContain('run `runstate --help` for usage');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(`runstate: no run ${unknown}\n`);
    expect(missing.stdout).toBe('');
    expect(noParent.code).toBe(1);
    expect(noParent.stderr).toBe(`runstate: no run ${unknown}\n`);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/runs \[options\][\s\S]*--parent ID\s+the steps of run ID/);
    expect(help.stdout).toMatch(/runstate show ID\s+one run/);
    expect(help.stdout).toMatch(/watch \[options\][\s\S]*--parent ID/);
  });
});
