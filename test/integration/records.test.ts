import postgres from 'postgres';
import { describe, expect, inject, it } from 'vitest';
import { createRun, dataOf, record, transitionRun, waitUntil } from '../support/operations.js';
import { uniqueProject, useServers, type GqlResponse, type TestServer } from '../support/server.js';

// records.md: what a change reports beside its status (outcome, exit code, meta, attempt), the
// times of imports, a run's attributes, and updateRun, over real HTTP on two instances.

const [a, b] = useServers(2) as [TestServer, TestServer];

interface Row {
  from: string | null;
  to: string;
  reason: string | null;
  outcome: string | null;
  exitCode: number | null;
  meta: Record<string, unknown> | null;
  attempt: number;
  at: string;
}

interface Record_ {
  status: string;
  outcome: string | null;
  exitCode: number | null;
  attributes: Record<string, unknown>;
  revision: number;
  version: number;
  name: string | null;
  tags: string[];
  meta: Record<string, unknown> | null;
  createdAt: string;
  updatedAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  duration: number | null;
  history: Row[];
}

async function read(id: string, via = a): Promise<Record_> {
  const response = await via.gql<{
    run: Omit<Record_, 'history'> & { statusHistory: { edges: { node: Row }[] } };
  }>(
    `query($id: ID!) { run(id: $id) {
      status outcome exitCode attributes revision version name tags meta createdAt updatedAt
      startedAt finishedAt duration
      statusHistory(first: 100) { edges { node { from to reason outcome exitCode meta attempt at } } } } }`,
    { id },
  );
  const { statusHistory, ...run } = dataOf(response).run;
  return { ...run, history: statusHistory.edges.map((e) => e.node) };
}

/** What a refused request must leave as it was (a running run's duration grows by itself). */
async function readStill(id: string): Promise<Omit<Record_, 'duration'>> {
  const { duration: _duration, ...rest } = await read(id);
  return rest;
}

const TRANSITION = `mutation($input: TransitionRunInput!) {
  transitionRun(input: $input) {
    __typename
    ... on TransitionAccepted { run { revision outcome exitCode } change { outcome exitCode meta attempt at } }
  } }`;

async function report(input: Record<string, unknown>, via = a) {
  return via.gql<{
    transitionRun: {
      __typename: string;
      run?: { revision: number; outcome: string | null; exitCode: number | null };
      change?: Row;
    };
  }>(TRANSITION, { input });
}

const UPDATE = `mutation($input: UpdateRunInput!) {
  updateRun(input: $input) { id name tags meta attributes revision } }`;

async function update(input: Record<string, unknown>, via = a) {
  return via.gql<{
    updateRun: {
      name: string | null;
      tags: string[];
      meta: unknown;
      attributes: Record<string, unknown>;
      revision: number;
    };
  }>(UPDATE, { input });
}

function refusedField(response: GqlResponse<unknown>): unknown {
  expect(response.data ?? null, JSON.stringify(response)).toBeNull();
  const error = response.errors?.[0];
  expect(error?.extensions?.['code'], JSON.stringify(response.errors)).toBe('BAD_USER_INPUT');
  // No SQL, no stack: a message a client can act on.
  expect(error?.message).not.toMatch(/select|insert|update |at .*\.ts:/i);
  return error?.extensions?.['field'];
}

describe('what a change reports', () => {
  it('outcome, exit code and meta go on the change and, when it ends the run, on the run; a retry clears the run’s', async () => {
    const run = await createRun(a, { project: uniqueProject('report'), maxRetries: 1 });
    await transitionRun(a, { id: run.id, to: 'RUNNING' });
    // A failure with a retry left: RUNNING -> RETRYING keeps the failure's report.
    const failed = dataOf(
      await report({
        id: run.id,
        to: 'FAILED',
        outcome: 'TIMEOUT',
        exitCode: -9,
        meta: { node: 'n1', signal: 'SIGKILL', nested: { tries: [1, 2] } },
      }),
    ).transitionRun;
    expect(failed.change).toMatchObject({ outcome: 'TIMEOUT', exitCode: -9, attempt: 2 });
    expect(failed.change!.meta).toEqual({
      node: 'n1',
      signal: 'SIGKILL',
      nested: { tries: [1, 2] },
    });
    // Not done: the run holds no outcome.
    expect(failed.run).toMatchObject({ outcome: null, exitCode: null });
    await transitionRun(a, { id: run.id, to: 'RUNNING' });
    const done = dataOf(
      await report({ id: run.id, to: 'FAILED', outcome: 'DIFF', exitCode: 64 }, b),
    ).transitionRun;
    expect(done.run).toMatchObject({ outcome: 'DIFF', exitCode: 64 });
    // The answer's revision is the one stored.
    expect(done.run!.revision).toBe((await read(run.id, b)).revision);

    const after = await read(run.id);
    expect(after).toMatchObject({ status: 'FAILED', outcome: 'DIFF', exitCode: 64 });
    expect(after.history.map((h) => [h.to, h.attempt, h.outcome, h.exitCode])).toEqual([
      ['CREATED', 1, null, null],
      ['RUNNING', 1, null, null],
      ['RETRYING', 2, 'TIMEOUT', -9],
      ['RUNNING', 2, null, null],
      ['FAILED', 2, 'DIFF', 64],
    ]);
    // Resumed: the run's outcome and exit code are cleared, like its stop message.
    await a.gql(`mutation($id: ID!) { resumeRun(id: $id) { __typename } }`, { id: run.id });
    expect(await read(run.id)).toMatchObject({ status: 'RESUMING', outcome: null, exitCode: null });
  });

  it('meta reported by a single change and by a batch of them is stored as the JSON object it is', async () => {
    const project = uniqueProject('meta-stored');
    const runs = await Promise.all(Array.from({ length: 3 }, () => createRun(a, { project })));
    // One change (the one-statement path), then a batch of common changes (one statement too).
    await transitionRun(a, { id: runs[0]!.id, to: 'RUNNING', meta: { n: 0 } });
    const batch = dataOf(
      await a.gql<{ transitionRuns: { change: { meta: unknown } }[] }>(
        `mutation($inputs: [TransitionRunInput!]!) {
          transitionRuns(inputs: $inputs) { ... on TransitionAccepted { change { meta } } } }`,
        { inputs: runs.slice(1).map((r, i) => ({ id: r.id, to: 'RUNNING', meta: { n: i + 1 } })) },
      ),
    );
    expect(batch.transitionRuns).toEqual([
      { change: { meta: { n: 1 } } },
      { change: { meta: { n: 2 } } },
    ]);
    // As stored: an object a SQL reader can look into, not a string holding one.
    const sql = postgres(inject('databaseUrl'), { max: 1, onnotice: () => {} });
    try {
      const stored = await sql<{ type: string; n: string }[]>`
        SELECT jsonb_typeof(meta) AS type, meta ->> 'n' AS n FROM status_changes
        WHERE run_id = ANY(${runs.map((r) => r.id)}::uuid[]) AND to_status = 'RUNNING'
        ORDER BY id`;
      expect(stored).toEqual([
        { type: 'object', n: '0' },
        { type: 'object', n: '1' },
        { type: 'object', n: '2' },
      ]);
    } finally {
      await sql.end();
    }
  });

  it("a native name's own outcome wins over the reporter's; its exit code is kept", async () => {
    const run = await createRun(a, { project: uniqueProject('native'), dialect: 'CANARY' });
    for (const native of ['pending', 'ready', 'running'])
      await transitionRun(a, { id: run.id, native });
    const answer = dataOf(
      await report({ id: run.id, native: 'diffed', outcome: 'PASS', exitCode: 64 }),
    ).transitionRun;
    expect(answer.change).toMatchObject({ outcome: 'DIFF', exitCode: 64 });
  });

  it('a worker with retries gets each attempt on its history rows (Parsl’s try id)', async () => {
    const run = await createRun(a, { project: uniqueProject('tries'), maxRetries: 2 });
    for (let attempt = 1; attempt <= 3; attempt++) {
      await transitionRun(a, { id: run.id, to: 'RUNNING', attempt });
      await transitionRun(a, { id: run.id, to: 'FAILED', attempt, exitCode: attempt });
    }
    const rows = (await read(run.id)).history;
    expect(rows.map((r) => `${r.to}@${r.attempt}`)).toEqual([
      'CREATED@1',
      'RUNNING@1',
      'RETRYING@2',
      'RUNNING@2',
      'RETRYING@3',
      'RUNNING@3',
      'FAILED@3',
    ]);
    expect(rows.at(-1)!.exitCode).toBe(3);
  });
});

describe('times reported by the client', () => {
  it("imports a finished run's history: times, startedAt, finishedAt and duration follow `at`", async () => {
    const t = (s: number) => new Date(Date.UTC(2026, 0, 2, 3, 0, s)).toISOString();
    const run = await createRun(a, { project: uniqueProject('import'), createdAt: t(0) });
    expect(run.createdAt).toBe(t(0));
    for (const [to, s] of [
      ['QUEUED', 1],
      ['RUNNING', 5],
      ['SUCCEEDED', 65],
    ] as const) {
      expect(dataOf(await report({ id: run.id, to, at: t(s) })).transitionRun.__typename).toBe(
        'TransitionAccepted',
      );
    }
    const imported = await read(run.id);
    expect(imported).toMatchObject({
      createdAt: t(0),
      startedAt: t(5),
      finishedAt: t(65),
      duration: 60,
      updatedAt: t(65),
    });
    expect(imported.history.map((h) => h.at)).toEqual([t(0), t(1), t(5), t(65)]);
  });

  it('refuses an `at` before the last change or in the future, writing nothing; times never go backwards', async () => {
    const run = await createRun(a, { project: uniqueProject('times') });
    await transitionRun(a, { id: run.id, to: 'RUNNING' });
    const before = await readStill(run.id);
    const earlier = new Date(Date.parse(before.updatedAt) - 1000).toISOString();
    expect(refusedField(await report({ id: run.id, to: 'SUCCEEDED', at: earlier }))).toBe(
      'input.at',
    );
    const later = new Date(Date.now() + 60_000).toISOString();
    expect(refusedField(await report({ id: run.id, to: 'SUCCEEDED', at: later }))).toBe('input.at');
    // In a batch, one bad time refuses the batch.
    const batch = await a.gql(
      `mutation($inputs: [TransitionRunInput!]!) { transitionRuns(inputs: $inputs) { __typename } }`,
      {
        inputs: [
          { id: run.id, to: 'PROCESSING' },
          { id: run.id, to: 'SUCCEEDED', at: earlier },
        ],
      },
    );
    expect(refusedField(batch)).toBe('inputs[1].at');
    expect(await readStill(run.id)).toEqual(before);
    expect(
      refusedField(
        await a.gql(`mutation($input: CreateRunInput!) { createRun(input: $input) { id } }`, {
          input: { project: uniqueProject('times'), createdAt: later },
        }),
      ),
    ).toBe('input.createdAt');

    // A change a little ahead of the clock (within the skew), then one without `at`: in order.
    const ahead = new Date(Date.now() + 3000).toISOString();
    await report({ id: run.id, to: 'PROCESSING', at: ahead });
    await report({ id: run.id, to: 'SUCCEEDED' });
    const times = (await read(run.id)).history.map((h) => Date.parse(h.at));
    expect(times).toEqual([...times].sort((x, y) => x - y));
    expect(times.at(-1)).toBeGreaterThanOrEqual(Date.parse(ahead));
  });
});

describe('bad reports: BAD_USER_INPUT naming the field, nothing written', () => {
  it('refuses too long outcomes, exit codes out of range, meta that is not a small, shallow object', async () => {
    const run = await createRun(a, { project: uniqueProject('bad') });
    await transitionRun(a, { id: run.id, to: 'RUNNING' });
    const before = await readStill(run.id);
    let deep: unknown = 1;
    for (let i = 0; i < 40; i++) deep = { d: deep };
    const cases: [Record<string, unknown>, string][] = [
      [{ outcome: 'X'.repeat(51) }, 'input.outcome'],
      [{ outcome: '' }, 'input.outcome'],
      [{ meta: [1, 2] }, 'input.meta'],
      [{ meta: 'text' }, 'input.meta'],
      [{ meta: { big: 'x'.repeat(17 * 1024) } }, 'input.meta'],
      [{ meta: deep }, 'input.meta'],
      [{ at: 'yesterday' }, 'input.at'],
    ];
    for (const [extra, field] of cases) {
      const response = await report({ id: run.id, to: 'SUCCEEDED', ...extra });
      expect(refusedField(response), JSON.stringify(extra).slice(0, 80)).toBe(field);
    }
    // GraphQL's Int is 32-bit: larger exit codes are refused before anything runs.
    for (const exitCode of [2 ** 31, -(2 ** 31) - 1]) {
      const response = await report({ id: run.id, to: 'SUCCEEDED', exitCode });
      expect(response.errors?.[0]?.extensions?.['code']).toBe('BAD_USER_INPUT');
    }
    expect(await readStill(run.id)).toEqual(before);
  });
});

describe('updateRun', () => {
  it('replaces name, tags and meta, merges attributes (null removes a key), and runUpdated fires on another instance', async () => {
    const run = await createRun(a, {
      project: uniqueProject('update'),
      name: 'first',
      tags: ['x'],
      meta: { owner: 'ann' },
      attributes: { keep: 1, drop: true },
    });
    const updates = record<{ runUpdated: { revision: number; attributes: unknown } }>(
      b.wsClient(),
      `subscription($id: ID!) { runUpdated(id: $id) { revision attributes } }`,
      { id: run.id },
    );
    try {
      await new Promise((resolve) => setTimeout(resolve, 200));
      const updated = dataOf(
        await update({
          id: run.id,
          name: 'second',
          tags: ['y', 'z', 'y'],
          meta: { owner: 'bob' },
          attributes: { drop: null, added: { mean: 0.5, std: [0.1] } },
        }),
      ).updateRun;
      expect(updated).toMatchObject({
        name: 'second',
        tags: ['y', 'z'],
        meta: { owner: 'bob' },
        attributes: { keep: 1, added: { mean: 0.5, std: [0.1] } },
      });
      // The subscription answers the run as it is first, then each update.
      await waitUntil('the update on the other instance', () =>
        updates.values.some((v) => v.runUpdated.revision === updated.revision),
      );
      expect(updates.values.at(-1)!.runUpdated).toEqual({
        revision: updated.revision,
        attributes: updated.attributes,
      });
      // Its deadlines count from its last status change or progress, not from an update.
      expect((await read(run.id)).updatedAt).toBe(run.updatedAt);
      // Fields left out are left alone; null clears name and meta.
      const cleared = dataOf(await update({ id: run.id, name: null, meta: null })).updateRun;
      expect(cleared).toMatchObject({
        name: null,
        meta: null,
        tags: ['y', 'z'],
        attributes: updated.attributes,
      });
    } finally {
      updates.dispose();
    }
  });

  it('compare-and-set: two instances updating one revision at once, exactly one wins', async () => {
    for (let round = 0; round < 5; round++) {
      const run = await createRun(a, { project: uniqueProject('cas') });
      const { revision } = await read(run.id);
      const answers = await Promise.all(
        [a, b].map((via, i) =>
          update({ id: run.id, expectedRevision: revision, attributes: { by: i } }, via),
        ),
      );
      const won = answers.filter((r) => r.data?.updateRun);
      const lost = answers.filter((r) => r.errors?.length);
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      expect(lost[0]!.errors![0]!.extensions).toMatchObject({
        code: 'REVISION_CONFLICT',
        expectedRevision: revision,
        actualRevision: revision + 1,
      });
      const after = await read(run.id);
      expect(after.revision).toBe(revision + 1);
      expect(after.attributes).toEqual(won[0]!.data!.updateRun.attributes);
    }
  });

  it('a transition and an update racing on one run both land, each once', async () => {
    for (let round = 0; round < 5; round++) {
      const run = await createRun(a, { project: uniqueProject('race') });
      const { revision } = await read(run.id);
      const [moved, updated] = await Promise.all([
        report({ id: run.id, to: 'RUNNING', exitCode: 0 }, a),
        update({ id: run.id, attributes: { round } }, b),
      ]);
      expect(dataOf(moved).transitionRun.__typename).toBe('TransitionAccepted');
      expect(dataOf(updated).updateRun.attributes).toEqual({ round });
      const after = await read(run.id);
      expect(after).toMatchObject({ status: 'RUNNING', attributes: { round }, version: 2 });
      expect(after.revision).toBe(revision + 2);
    }
  });

  it('refuses bad updates with the field named, writing nothing', async () => {
    const run = await createRun(a, { project: uniqueProject('bad-update'), attributes: { a: 1 } });
    const before = await read(run.id);
    const cases: [Record<string, unknown>, string][] = [
      [{}, 'input'],
      [{ name: '' }, 'input.name'],
      [{ tags: [''] }, 'input.tags[0]'],
      [{ meta: [1] }, 'input.meta'],
      [{ attributes: 'x' }, 'input.attributes'],
      [{ attributes: { big: 'x'.repeat(70 * 1024) } }, 'input.attributes'],
      [{ name: 'n', expectedRevision: 0 }, 'input.expectedRevision'],
    ];
    for (const [extra, field] of cases)
      expect(refusedField(await update({ id: run.id, ...extra })), JSON.stringify(extra)).toBe(
        field,
      );
    // Each half fits, the merge does not.
    await update({ id: run.id, attributes: { x: 'x'.repeat(40 * 1024) } });
    const grown = await read(run.id);
    expect(
      refusedField(await update({ id: run.id, attributes: { y: 'y'.repeat(40 * 1024) } })),
    ).toBe('input.attributes');
    expect(await read(run.id)).toEqual(grown);
    expect(before.revision).toBe(grown.revision - 1);
    // Another project's token does not learn the run exists.
    const token = dataOf(
      await a.gql<{ createApiToken: { token: string } }>(
        `mutation($p: String!) { createApiToken(input: { name: $p, role: WRITE, projects: [$p] }) { token } }`,
        { p: uniqueProject('elsewhere') },
      ),
    ).createApiToken.token;
    const hidden = await a.gql(UPDATE, { input: { id: run.id, name: 'n' } }, { token });
    expect(hidden.errors?.[0]?.extensions?.['code']).toBe('NOT_FOUND');
  });
});

describe('filters on JSON', () => {
  it('runs and counts by meta and attributes containment', async () => {
    const project = uniqueProject('json-filter');
    const gpu = await createRun(a, { project, meta: { gpu: { kind: 'a100' }, team: 'x' } });
    await createRun(a, { project, meta: { gpu: { kind: 'h100' } } });
    const tagged = await createRun(a, { project, attributes: { suite: 'nightly', n: 3 } });
    const query = `query($f: RunFilter) {
      runs(filter: $f) { totalCount edges { node { id } } }
      runCounts(filter: $f) { status count } }`;
    type Answer = {
      runs: { totalCount: number; edges: { node: { id: string } }[] };
      runCounts: { status: string; count: number }[];
    };
    const ask = async (f: Record<string, unknown>) => dataOf(await b.gql<Answer>(query, { f }));
    const byMeta = await ask({ project, meta: { gpu: { kind: 'a100' } } });
    expect(byMeta.runs.edges.map((e) => e.node.id)).toEqual([gpu.id]);
    expect(byMeta.runs.totalCount).toBe(1);
    expect(byMeta.runCounts).toEqual([{ status: 'CREATED', count: 1 }]);
    const byAttributes = await ask({ project, attributes: { suite: 'nightly' } });
    expect(byAttributes.runs.edges.map((e) => e.node.id)).toEqual([tagged.id]);
    expect((await ask({ project, attributes: { suite: 'weekly' } })).runs.totalCount).toBe(0);
    expect(
      refusedField(await b.gql(query, { f: { project, meta: ['not', 'an', 'object'] } })),
    ).toBe('filter.meta');
  });
});
