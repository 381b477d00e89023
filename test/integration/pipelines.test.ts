import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { readFileSync } from 'node:fs';
import postgres from 'postgres';
import { dataOf, latestCursorOf, record, waitUntil } from '../support/operations.js';
import { uniqueProject, useServers, type TestServer } from '../support/server.js';

// pipelines.md: runs made of runs, over real HTTP and WebSocket, two instances on one database.

const [a, b] = useServers(2, { reaperIntervalMs: 200 }) as [TestServer, TestServer];

const LIFECYCLE = JSON.parse(
  readFileSync(new URL('../fixtures/lifecycle.json', import.meta.url), 'utf8'),
) as { statuses: { status: string; allowedNext: string[] }[] };
const ALLOWED = new Map(LIFECYCLE.statuses.map((s) => [s.status, s.allowedNext]));

interface Created {
  id: string;
  status: string;
  op: string | null;
}

async function create(input: Record<string, unknown>, via = a): Promise<Created> {
  const response = await via.gql<{ createRun: Created }>(
    `mutation($input: CreateRunInput!) { createRun(input: $input) { id status op } }`,
    { input },
  );
  return dataOf(response).createRun;
}

async function move(id: string, to: string, via = a, extra: Record<string, unknown> = {}) {
  const response = await via.gql<{ transitionRun: { __typename: string } }>(
    `mutation($input: TransitionRunInput!) { transitionRun(input: $input) { __typename } }`,
    { input: { id, to, ...extra } },
  );
  return dataOf(response).transitionRun.__typename;
}

async function moveNative(id: string, native: string) {
  const response = await a.gql<{ transitionRun: { __typename: string; message?: string } }>(
    `mutation($input: TransitionRunInput!) { transitionRun(input: $input) { __typename ... on IllegalTransition { message } } }`,
    { input: { id, native } },
  );
  const answer = dataOf(response).transitionRun;
  expect(answer.__typename, `${native}: ${answer.message}`).toBe('TransitionAccepted');
}

interface RunView {
  status: string;
  nativeStatus: string;
  blockedReason: string | null;
  stopMessage: string | null;
  history: { from: string | null; to: string; reason: string | null; message: string | null }[];
}

async function view(id: string, via = a): Promise<RunView> {
  const response = await via.gql<{
    run: Omit<RunView, 'history'> & {
      statusHistory: { edges: { node: RunView['history'][number] }[] };
    };
  }>(
    `query($id: ID!) { run(id: $id) { status nativeStatus blockedReason stopMessage
      statusHistory(first: 100) { edges { node { from to reason message } } } } }`,
    { id },
  );
  const { statusHistory, ...run } = dataOf(response).run;
  return { ...run, history: statusHistory.edges.map((e) => e.node) };
}

const statusOf = async (id: string) => (await view(id)).status;

function expectLegalHistory(history: RunView['history'], what: string) {
  expect(history[0]).toMatchObject({ from: null, to: 'CREATED' });
  history.slice(1).forEach((row, i) => {
    expect(row.from, `${what} v${i + 2}`).toBe(history[i]!.to);
    expect(ALLOWED.get(row.from!), `${what}: ${row.from} -> ${row.to}`).toContain(row.to);
  });
}

describe("walkthroughs, in each system's terms", () => {
  it('Polyaxon: a DAG of four ops referring to each other as ops.NAME, a tensorboard on ops.train, a rollup parent', async () => {
    const project = uniqueProject('polyaxon-dag');
    const dag = await create({ project, name: 'dag', dialect: 'POLYAXON', rollup: true });
    const step = (op: string, more: Record<string, unknown> = {}) =>
      create({ project, parentId: dag.id, op, dialect: 'POLYAXON', ...more });
    const prepare = await step('prepare');
    const train = await step('train', { dependsOn: ['ops.prepare'] });
    const board = await step('tensorboard', {
      events: [{ ref: 'ops.train', kinds: ['RUN_STATUS_RUNNING'] }],
    });
    const evaluate = await step('evaluate', {
      dependencies: [{ ref: 'ops.train', when: ['SUCCEEDED'] }],
    });

    const read = await a.gql<{
      byOp: { id: string };
      run: {
        children: { totalCount: number; edges: { node: { op: string } }[] };
        dependencies: { run: { id: string }; when: string[]; isSatisfied: boolean }[];
      };
    }>(
      `query($dag: ID!, $evaluate: ID!) { byOp: runByOp(parentId: $dag, op: "train") { id }
        run(id: $evaluate) { children { totalCount edges { node { op } } }
          dependencies { run { id } when isSatisfied } } }`,
      { dag: dag.id, evaluate: evaluate.id },
    );
    expect(dataOf(read).byOp.id).toBe(train.id);
    expect(dataOf(read).run.dependencies).toEqual([
      { run: { id: train.id }, when: ['SUCCEEDED'], isSatisfied: false },
    ]);

    for (const native of ['compiled', 'queued', 'scheduled', 'starting', 'running'])
      await moveNative(prepare.id, native);
    // The first step running starts the pipeline, in the same transaction.
    expect(await view(dag.id)).toMatchObject({ status: 'RUNNING', nativeStatus: 'running' });
    await moveNative(prepare.id, 'succeeded');
    expect(await statusOf(train.id)).toBe('QUEUED');
    await moveNative(train.id, 'running');
    expect(await statusOf(board.id)).toBe('QUEUED');
    await moveNative(train.id, 'succeeded');
    expect(await statusOf(evaluate.id)).toBe('QUEUED');
    await moveNative(evaluate.id, 'running');
    await moveNative(evaluate.id, 'succeeded');
    expect(await statusOf(dag.id)).toBe('RUNNING'); // the tensorboard still runs
    await moveNative(board.id, 'running');
    await moveNative(board.id, 'stopped');
    const done = await view(dag.id);
    expect(done).toMatchObject({ status: 'SUCCEEDED', nativeStatus: 'succeeded' });
    expect(done.history.at(-1)).toMatchObject({ reason: 'CHILDREN_SUCCEEDED' });

    const counts = await a.gql<{
      run: { childCounts: { status: string; count: number }[] };
      runCounts: { status: string; count: number }[];
      steps: { totalCount: number };
      roots: { totalCount: number };
    }>(
      `query($dag: ID!, $project: String!) { run(id: $dag) { childCounts { status count } }
        runCounts(filter: { project: $project }) { status count }
        steps: runs(filter: { parentId: $dag }, first: 1) { totalCount }
        roots: runs(filter: { project: $project, roots: true }) { totalCount } }`,
      { dag: dag.id, project },
    );
    expect(dataOf(counts).run.childCounts).toEqual([
      { status: 'SUCCEEDED', count: 3 },
      { status: 'STOPPED', count: 1 },
    ]);
    expect(dataOf(counts).runCounts).toEqual([
      { status: 'SUCCEEDED', count: 4 },
      { status: 'STOPPED', count: 1 },
    ]);
    expect(dataOf(counts).steps.totalCount).toBe(4);
    expect(dataOf(counts).roots.totalCount).toBe(1);
  });

  it('Canary: a session whose cases have mixed `when` conditions and outcomes', async () => {
    const project = uniqueProject('canary-session');
    const session = await create({ project, name: 'session', dialect: 'CANARY', rollup: true });
    const testCase = (op: string, dependencies: unknown[] = []) =>
      create({ project, parentId: session.id, op, dialect: 'CANARY', dependencies });
    const heat = await testCase('heat');
    // Runs only when heat failed (diffed is FAILED): a diagnosis case.
    const diagnose = await testCase('diagnose', [{ ref: 'ops.heat', when: ['FAILED'] }]);
    const report = await testCase('report', [{ ref: 'ops.heat', when: ['SUCCEEDED'] }]);
    // Runs when heat is done either way.
    const cleanup = await testCase('cleanup', [{ ref: 'ops.heat', when: ['SUCCEEDED', 'FAILED'] }]);
    await moveNative(heat.id, 'ready');
    await moveNative(heat.id, 'running');
    await moveNative(heat.id, 'diffed');
    expect(await view(report.id)).toMatchObject({
      status: 'UPSTREAM_FAILED',
      nativeStatus: 'not_run',
    });
    expect((await view(report.id)).blockedReason).toContain(heat.id);
    expect(await view(diagnose.id)).toMatchObject({ status: 'QUEUED', nativeStatus: 'ready' });
    expect(await statusOf(cleanup.id)).toBe('QUEUED');
    for (const id of [diagnose.id, cleanup.id]) {
      await moveNative(id, 'running');
      await moveNative(id, 'success');
    }
    const end = await view(session.id);
    expect(end).toMatchObject({ status: 'FAILED', nativeStatus: 'failed' });
    expect(end.history.at(-1)!.reason).toBe('CHILD_FAILED');
    expect(end.history.at(-1)!.message).toContain('failed');
  });

  it('Parsl: a workflow with a dep_fail cascade and a memoized task', async () => {
    const project = uniqueProject('parsl-workflow');
    const earlier = await create({ project, dialect: 'PARSL', cacheKey: 'fetch@v1' });
    await moveNative(earlier.id, 'launched');
    await moveNative(earlier.id, 'exec_done');
    const dfk = await create({ project, name: 'dfk', dialect: 'PARSL', rollup: true });
    const task = (op: string, more: Record<string, unknown> = {}) =>
      create({ project, parentId: dfk.id, op, dialect: 'PARSL', ...more });
    const fetch = await task('fetch', { cacheKey: 'fetch@v1' });
    expect(await view(fetch.id)).toMatchObject({ status: 'SKIPPED', nativeStatus: 'memo_done' });
    const simulate = await task('simulate', { dependsOn: ['ops.fetch'] });
    const analyse = await task('analyse', { dependsOn: ['ops.simulate'] });
    const plot = await task('plot', { dependsOn: ['ops.analyse'] });
    expect(await statusOf(simulate.id)).toBe('QUEUED'); // a memoized upstream counts as done
    await moveNative(simulate.id, 'launched');
    await moveNative(simulate.id, 'failed');
    // dep_fail cascades through every level, in the transaction of the failure.
    for (const id of [analyse.id, plot.id])
      expect(await view(id)).toMatchObject({ status: 'UPSTREAM_FAILED', nativeStatus: 'dep_fail' });
    expect(await view(dfk.id)).toMatchObject({ status: 'FAILED', nativeStatus: 'failed' });
    expect((await view(dfk.id)).history.map((h) => h.to)).toEqual(['CREATED', 'RUNNING', 'FAILED']);
  });

  it('a scheduled run waits ON_SCHEDULE and fires at its time, once across instances', async () => {
    const project = uniqueProject('schedule');
    const at = new Date(Date.now() + 1500).toISOString();
    const nightly = await create({ project, name: 'nightly', scheduledAt: at });
    expect(nightly.status).toBe('ON_SCHEDULE');
    const read = await a.gql<{ run: { scheduledAt: string } }>(
      `query($id: ID!) { run(id: $id) { scheduledAt } }`,
      { id: nightly.id },
    );
    expect(dataOf(read).run.scheduledAt).toBe(at);
    expect(await statusOf(nightly.id)).toBe('ON_SCHEDULE');
    await waitUntil('the schedule fires', async () => (await statusOf(nightly.id)) === 'QUEUED');
    const { history } = await view(nightly.id);
    expect(history.map((h) => [h.to, h.reason])).toEqual([
      ['CREATED', 'CREATED'],
      ['ON_SCHEDULE', 'SCHEDULED'],
      ['QUEUED', 'SCHEDULE_DUE'],
    ]);
  });
});

describe('concurrency', () => {
  it('two children finishing at the same moment on two instances move a rollup parent exactly once', async () => {
    for (let round = 0; round < 8; round++) {
      const project = uniqueProject('rollup-race');
      const parent = await create({ project, rollup: true });
      const left = await create({ project, parentId: parent.id, op: 'left' });
      const right = await create({ project, parentId: parent.id, op: 'right' });
      await move(left.id, 'RUNNING');
      await move(right.id, 'RUNNING');
      const answers = await Promise.all([
        move(left.id, 'SUCCEEDED', a),
        move(right.id, round % 2 === 0 ? 'SUCCEEDED' : 'FAILED', b),
      ]);
      expect(answers).toEqual(['TransitionAccepted', 'TransitionAccepted']);
      const { history, status } = await view(parent.id);
      expect(history.map((h) => h.to)).toEqual([
        'CREATED',
        'RUNNING',
        round % 2 === 0 ? 'SUCCEEDED' : 'FAILED',
      ]);
      expect(status).toBe(history.at(-1)!.to);
    }
  });

  it("a stop racing a child's success leaves a legal history everywhere", async () => {
    for (let round = 0; round < 8; round++) {
      const project = uniqueProject('stop-race');
      const parent = await create({ project, rollup: round % 2 === 0 });
      const children = await Promise.all(
        ['a', 'b', 'c'].map((op) => create({ project, parentId: parent.id, op })),
      );
      for (const child of children) await move(child.id, 'RUNNING');
      const [stop, success] = await Promise.all([
        a.gql<{ stopRun: { __typename: string } }>(
          `mutation($id: ID!) { stopRun(id: $id, message: "cancelled") { __typename } }`,
          { id: parent.id },
        ),
        move(children[0]!.id, 'SUCCEEDED', b),
      ]);
      expect(dataOf(stop).stopRun.__typename).toBe('TransitionAccepted');
      // STOPPING -> SUCCEEDED is legal: a run may finish before its stop lands.
      expect(success).toBe('TransitionAccepted');
      for (const run of [parent, ...children]) {
        const { history, status } = await view(run.id);
        expectLegalHistory(history, run.op ?? 'parent');
        expect(status, `${run.op ?? 'parent'} (round ${round}): ${JSON.stringify(history)}`).toBe(
          history.at(-1)!.to,
        );
      }
      expect(await statusOf(children[0]!.id)).toBe('SUCCEEDED');
      for (const child of children.slice(1)) {
        const { history } = await view(child.id);
        expect(history.at(-1)).toMatchObject({ to: 'STOPPING', reason: 'PARENT_STOPPED' });
      }
    }
  });
});

describe('reading a pipeline live', () => {
  it('statusChanged(filter: { parentId }) streams its steps; runUpdated of the parent fires on their changes', async () => {
    const project = uniqueProject('live');
    const parent = await create({ project });
    const one = await create({ project, parentId: parent.id, op: 'one' });
    const outsider = await create({ project });
    const after = await latestCursorOf(a, one.id);
    const steps = record<{ statusChanged: { runId: string; to: string } }>(
      b.wsClient(),
      `subscription($filter: StatusChangeFilter, $after: String) {
        statusChanged(filter: $filter, after: $after) { runId to } }`,
      { filter: { parentId: parent.id }, after },
    );
    const parentUpdates = record<{
      runUpdated: { childCounts: { status: string; count: number }[] };
    }>(
      b.wsClient(),
      `subscription($id: ID!) { runUpdated(id: $id) { childCounts { status count } } }`,
      { id: parent.id },
    );
    try {
      await new Promise((resolve) => setTimeout(resolve, 200));
      await move(outsider.id, 'RUNNING');
      await move(one.id, 'RUNNING');
      const two = await create({ project, parentId: parent.id, op: 'two' });
      await move(two.id, 'QUEUED');
      const events = await steps.waitFor(3);
      expect(events.map((e) => e.statusChanged)).toEqual([
        { runId: one.id, to: 'RUNNING' },
        { runId: two.id, to: 'CREATED' },
        { runId: two.id, to: 'QUEUED' },
      ]);
      await waitUntil('the parent shows its steps', () =>
        parentUpdates.values.some(
          (v) =>
            JSON.stringify(v.runUpdated.childCounts) ===
            JSON.stringify([
              { status: 'QUEUED', count: 1 },
              { status: 'RUNNING', count: 1 },
            ]),
        ),
      );
    } finally {
      steps.dispose();
      parentUpdates.dispose();
    }
  });

  it("counts are exact before and after the log is folded, and only the token's projects count", async () => {
    const mine = uniqueProject('counts-mine');
    const theirs = uniqueProject('counts-theirs');
    const runs = await Promise.all([1, 2, 3].map(() => create({ project: mine })));
    await create({ project: theirs });
    await move(runs[0]!.id, 'RUNNING');
    const countsOf = async (token?: string) =>
      a.gql<{
        runCounts: { status: string; count: number }[];
        mine: { status: string; count: number }[];
      }>(
        `query($mine: String!) { runCounts { status count }
          mine: runCounts(filter: { project: $mine }) { status count } }`,
        { mine },
        token ? { token } : undefined,
      );
    // Right after the writes (the log not folded in yet) and after a fold (the reaper: 200 ms).
    expect(dataOf(await countsOf()).mine).toEqual([
      { status: 'CREATED', count: 2 },
      { status: 'RUNNING', count: 1 },
    ]);
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect(dataOf(await countsOf()).mine).toEqual([
      { status: 'CREATED', count: 2 },
      { status: 'RUNNING', count: 1 },
    ]);
    const token = dataOf(
      await a.gql<{ createApiToken: { token: string } }>(
        `mutation($input: CreateApiTokenInput!) { createApiToken(input: $input) { token } }`,
        { input: { name: uniqueProject('reader'), role: 'READ', projects: [mine] } },
      ),
    ).createApiToken.token;
    // A token of one project counts that project only, whatever the filter asks.
    expect(dataOf(await countsOf(token)).runCounts).toEqual([
      { status: 'CREATED', count: 2 },
      { status: 'RUNNING', count: 1 },
    ]);
  });
});

describe("a parent's counts", () => {
  let sql: postgres.Sql;
  beforeAll(() => {
    sql = postgres(inject('databaseUrl'), { max: 2, onnotice: () => {} });
  });
  afterAll(async () => {
    await sql.end();
  });

  type Counts = { status: string; count: number }[];
  const childCountsOf = async (id: string, via: TestServer) =>
    dataOf(
      await via.gql<{ run: { childCounts: Counts } }>(
        `query($id: ID!) { run(id: $id) { childCounts { status count } } }`,
        { id },
      ),
    ).run.childCounts;
  /** The steps' statuses counted one by one, in lifecycle order as childCounts answers. */
  const truthOf = async (id: string): Promise<Counts> => {
    const rows = await sql<{ name: string; n: number }[]>`
      SELECT status::text AS name, count(*)::int AS n FROM runs WHERE parent_id = ${id}
      GROUP BY status ORDER BY status`;
    return rows.map((r) => ({ status: r.name, count: r.n }));
  };

  it('childCounts stay exact while steps change on two instances, before and after the fold', async () => {
    const project = uniqueProject('child-counts');
    const parent = await create({ project });
    const steps = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        create({ project, parentId: parent.id, op: `s${i}` }, i % 2 ? a : b),
      ),
    );
    // Every step moves on both instances at once: RUNNING, then six succeed and three fail.
    await Promise.all(steps.map((s, i) => move(s.id, 'RUNNING', i % 2 ? a : b)));
    await Promise.all(
      steps.slice(0, 9).map((s, i) => move(s.id, i < 6 ? 'SUCCEEDED' : 'FAILED', i % 2 ? b : a)),
    );
    const truth = await truthOf(parent.id);
    expect(truth).toEqual([
      { status: 'RUNNING', count: 3 },
      { status: 'SUCCEEDED', count: 6 },
      { status: 'FAILED', count: 3 },
    ]);
    // Right after the writes (most of the log not folded yet) on both instances, then folded.
    expect(await childCountsOf(parent.id, a)).toEqual(truth);
    expect(await childCountsOf(parent.id, b)).toEqual(truth);
    await waitUntil('the fold to reach the steps', async () => {
      const [row] = await sql<{ n: number }[]>`
        SELECT coalesce(sum(n), 0)::int AS n FROM run_child_counts WHERE parent_id = ${parent.id}`;
      return row!.n === 12;
    });
    expect(await childCountsOf(parent.id, a)).toEqual(truth);
    // A filter naming the parent and another project counts nothing.
    const other = dataOf(
      await a.gql<{ runCounts: Counts }>(
        `query($f: RunFilter) { runCounts(filter: $f) { status count } }`,
        { f: { parentId: parent.id, project: uniqueProject('elsewhere') } },
      ),
    ).runCounts;
    expect(other).toEqual([]);
  });

  it('migration 0016 fills the counts as of the fold position, whatever the log holds after it', async () => {
    const project = uniqueProject('child-backfill');
    const parent = await create({ project });
    const steps = await Promise.all(
      Array.from({ length: 6 }, (_, i) => create({ project, parentId: parent.id, op: `s${i}` })),
    );
    for (const s of steps) await move(s.id, 'RUNNING');
    const migration = readFileSync(
      new URL('../../drizzle/0016_child_counts.sql', import.meta.url),
      'utf8',
    );
    const backfill = migration
      .split('--> statement-breakpoint')
      .find((part) => part.includes('INSERT INTO "run_child_counts"'))!
      .replace('INSERT INTO "run_child_counts"', 'INSERT INTO backfilled');
    // Hold the fold position, so the changes below stay after it; then backfill a copy.
    const reserved = await sql.reserve();
    try {
      await reserved`BEGIN`;
      await reserved`SELECT through_id FROM run_counts_position WHERE id = 1 FOR UPDATE`;
      await move(steps[0]!.id, 'SUCCEEDED');
      await move(steps[1]!.id, 'FAILED');
      await reserved`CREATE TEMP TABLE backfilled (LIKE run_child_counts) ON COMMIT DROP`;
      await reserved.unsafe(backfill);
      // What a read adds: the parent's log rows after the position.
      const [after] = await reserved<{ n: number }[]>`
        SELECT count(*)::int AS n FROM status_changes c, run_counts_position p
        WHERE p.id = 1 AND c.id > p.through_id AND c.parent_id = ${parent.id}`;
      expect(after!.n).toBeGreaterThanOrEqual(2);
      const read = await reserved<{ name: string; n: number }[]>`
        SELECT status::text AS name, sum(n)::int AS n FROM (
          SELECT status, n FROM backfilled WHERE parent_id = ${parent.id}
          UNION ALL SELECT c.to_status, 1 FROM status_changes c, run_counts_position p
            WHERE p.id = 1 AND c.id > p.through_id AND c.parent_id = ${parent.id}
          UNION ALL SELECT c.from_status, -1 FROM status_changes c, run_counts_position p
            WHERE p.id = 1 AND c.id > p.through_id AND c.parent_id = ${parent.id}
              AND c.from_status IS NOT NULL
        ) AS t GROUP BY status HAVING sum(n) <> 0 ORDER BY status`;
      expect(read.map((r) => ({ status: r.name, count: r.n }))).toEqual(await truthOf(parent.id));
      await reserved`ROLLBACK`;
    } finally {
      reserved.release();
    }
    expect(await childCountsOf(parent.id, a)).toEqual(await truthOf(parent.id));
  });
});

describe('review fixes', () => {
  it('a session failed by a failed case opens again when the case is retried, and succeeds', async () => {
    const project = uniqueProject('canary-retry');
    const session = await create({ project, dialect: 'CANARY', rollup: true });
    const flaky = await create({ project, parentId: session.id, op: 'flaky', dialect: 'CANARY' });
    const steady = await create({ project, parentId: session.id, op: 'steady', dialect: 'CANARY' });
    for (const native of ['running', 'success']) await moveNative(steady.id, native);
    for (const native of ['running', 'failed']) await moveNative(flaky.id, native);
    expect(await statusOf(session.id)).toBe('FAILED');
    // Canary's failed -> retry -> ready -> running -> success.
    for (const native of ['retry', 'ready', 'running', 'success'])
      await moveNative(flaky.id, native);
    const { history } = await view(session.id);
    expect(history.map((h) => [h.to, h.reason])).toEqual([
      ['CREATED', 'CREATED'],
      ['RUNNING', 'CHILD_RUNNING'],
      ['FAILED', 'CHILD_FAILED'],
      ['RESUMING', 'CHILD_RETRIED'],
      ['RUNNING', 'CHILD_RUNNING'],
      ['SUCCEEDED', 'CHILDREN_SUCCEEDED'],
    ]);
  });

  it('a stop reaches the steps below a step that is already stopping; a stopped parent takes no new step', async () => {
    const project = uniqueProject('deep-stop');
    const top = await create({ project });
    const middle = await create({ project, parentId: top.id, op: 'middle' });
    const leaf = await create({ project, parentId: middle.id, op: 'leaf' });
    for (const run of [top, middle, leaf]) await move(run.id, 'RUNNING');
    await a.gql(`mutation($id: ID!) { stopRun(id: $id) { __typename } }`, { id: middle.id });
    expect(await statusOf(leaf.id)).toBe('STOPPING');
    await move(leaf.id, 'RUNNING', a, { force: true, reason: 'test: running again' });
    await a.gql(`mutation($id: ID!) { stopRun(id: $id) { __typename } }`, { id: top.id });
    expect(await statusOf(leaf.id)).toBe('STOPPING');
    const refused = await a.gql(
      `mutation($input: CreateRunInput!) { createRun(input: $input) { id } }`,
      { input: { project, parentId: top.id, op: 'late' } },
    );
    expect(refused.errors?.[0]?.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'input.parentId',
    });
  });

  it('a scheduled run with a queueTimeout shorter than its wait still waits for its time', async () => {
    const project = uniqueProject('schedule-timeout');
    const at = new Date(Date.now() + 2500).toISOString();
    const run = await create({ project, scheduledAt: at, queueTimeout: 1 });
    await new Promise((resolve) => setTimeout(resolve, 1600));
    expect(await statusOf(run.id)).toBe('ON_SCHEDULE');
    await waitUntil('the schedule fires', async () => (await statusOf(run.id)) === 'QUEUED');
  });
});

describe('scope', () => {
  it("a token sees no upstream of another project in a run's dependencies", async () => {
    const theirs = await create({ project: uniqueProject('dep-theirs') });
    const project = uniqueProject('dep-mine');
    const mine = await create({ project });
    const step = await create({
      project,
      dependencies: [{ ref: theirs.id }, { ref: mine.id, when: ['SUCCEEDED', 'FAILED'] }],
    });
    const token = dataOf(
      await a.gql<{ createApiToken: { token: string } }>(
        `mutation($input: CreateApiTokenInput!) { createApiToken(input: $input) { token } }`,
        { input: { name: uniqueProject('dep-reader'), role: 'READ', projects: [project] } },
      ),
    ).createApiToken.token;
    const query = `query($id: ID!) { run(id: $id) { dependencies { run { id } when } } }`;
    const asAdmin = dataOf(
      await a.gql<{ run: { dependencies: unknown[] } }>(query, { id: step.id }),
    );
    expect(asAdmin.run.dependencies).toHaveLength(2);
    const scoped = dataOf(
      await a.gql<{ run: { dependencies: unknown[] } }>(query, { id: step.id }, { token }),
    );
    expect(scoped.run.dependencies).toEqual([
      { run: { id: mine.id }, when: ['SUCCEEDED', 'FAILED'] },
    ]);
  });
});

describe('bad input: BAD_USER_INPUT naming the field, nothing written', () => {
  async function expectRefused(input: Record<string, unknown>, field: string, project: string) {
    const before = await totalOf(project);
    const response = await a.gql(
      `mutation($input: CreateRunInput!) { createRun(input: $input) { id } }`,
      {
        input,
      },
    );
    expect(response.errors?.[0]?.extensions, JSON.stringify(response.errors)).toMatchObject({
      code: 'BAD_USER_INPUT',
      field,
    });
    expect(await totalOf(project)).toBe(before);
  }
  async function totalOf(project: string) {
    const response = await a.gql<{ runs: { totalCount: number } }>(
      `query($p: String!) { runs(filter: { project: $p }) { totalCount } }`,
      { p: project },
    );
    return dataOf(response).runs.totalCount;
  }

  it('cycles, unknown ops, foreign or too deep parents, impossible conditions, past schedules', async () => {
    const project = uniqueProject('pipeline-bad');
    const parent = await create({ project, rollup: true });
    await create({ project, parentId: parent.id, op: 'a' });
    // A step waiting for its own parent waits for itself.
    await expectRefused(
      { project, parentId: parent.id, op: 'b', dependsOn: [parent.id] },
      'input.dependsOn[0]',
      project,
    );
    await expectRefused(
      { project, parentId: parent.id, op: 'b', dependencies: [{ ref: 'ops.b' }] },
      'input.dependencies[0].ref',
      project,
    );
    await expectRefused(
      { project, parentId: parent.id, op: 'b', dependencies: [{ ref: 'ops.nope' }] },
      'input.dependencies[0].ref',
      project,
    );
    await expectRefused({ project, dependsOn: ['ops.a'] }, 'input.dependsOn[0]', project);
    await expectRefused({ project, parentId: parent.id, op: 'a' }, 'input.op', project);
    await expectRefused({ project, op: 'lonely' }, 'input.op', project);
    const foreign = await create({ project: uniqueProject('other') });
    await expectRefused({ project, parentId: foreign.id }, 'input.parentId', project);
    // Eight levels below a root at most.
    let deepest = parent;
    for (let level = 1; level <= 8; level++)
      deepest = await create({ project, parentId: deepest.id });
    await expectRefused({ project, parentId: deepest.id }, 'input.parentId', project);
    // SUCCEEDED can never become FAILED: the condition can never hold.
    const done = await create({ project });
    await move(done.id, 'RUNNING');
    await move(done.id, 'SUCCEEDED');
    await expectRefused(
      { project, dependencies: [{ ref: `runs.${done.id}`, when: ['FAILED'] }] },
      'input.dependencies[0].when',
      project,
    );
    await expectRefused(
      { project, scheduledAt: new Date(Date.now() - 60_000).toISOString() },
      'input.scheduledAt',
      project,
    );
    await expectRefused(
      { project, dependsOn: [done.id], dependencies: [{ ref: done.id }] },
      'input.dependencies[0].ref',
      project,
    );
    await expectRefused({ project, dependsOn: ['not-a-ref'] }, 'input.dependsOn[0]', project);
    // The same op with the run's idempotency key is a replay, not a duplicate.
    const first = await create({ project, parentId: parent.id, op: 'c', idempotencyKey: 'c-1' });
    const again = await create({ project, parentId: parent.id, op: 'c', idempotencyKey: 'c-1' });
    expect(again.id).toBe(first.id);
  });
});
