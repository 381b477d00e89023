import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { createPostgresDatabase, type Database } from '../../src/db/client.js';
import { createRun, dataOf, record, transitionRun, waitUntil } from '../support/operations.js';
import { startServer, uniqueProject, type TestServer } from '../support/server.js';

// Issue 18: the common change is one statement, and the change log's upkeep is off the
// per-commit path: an instance publishes its own commits without reading them back, and other
// instances hear of them through a NOTIFY that rides in the writes, not one per commit. Counted
// from the statements each instance sends to PostgreSQL (not timed).

const statements: { a: string[]; b: string[] } = { a: [], b: [] };
let a: TestServer;
let b: TestServer;
const databases: Database[] = [];

beforeAll(async () => {
  for (const name of ['a', 'b'] as const) {
    const database = createPostgresDatabase({
      url: inject('databaseUrl'),
      poolSize: 5,
      onStatement: (query) => statements[name].push(query),
    });
    databases.push(database);
    const server = await startServer({ database });
    if (name === 'a') a = server;
    else b = server;
  }
});
afterAll(async () => {
  await a?.stop();
  await b?.stop();
  await Promise.all(databases.map((d) => d.close()));
});

/** Statements of the reaper's and retention's passes (and their transactions). */
const BACKGROUND = new Set([
  'findDeadlineCandidates',
  'lockCountsPosition',
  'foldCountsLog',
  'listMeasurementPartitions',
  'expireRows',
  'SELECT pg_try_advisory_xact_lock($1)',
  'BEGIN',
  'COMMIT',
]);

const kind = (query: string) =>
  /\/\* (\w+) \*\//.exec(query)?.[1] ?? query.trim().split(/\s+/, 2).join(' ').slice(0, 40);

it('40 changes in a row: 40 statements on the writing instance, every one delivered on both', async () => {
  const run = await createRun(a, { project: uniqueProject('round-trips') });
  const running = await transitionRun(a, { id: run.id, to: 'RUNNING' });
  // After that change: without a cursor, an instance that has not read it yet would send it too.
  const after = running.change!.cursor;
  const query = `subscription($id: ID!, $after: String) {
    statusChanged(filter: { runIds: [$id] }, after: $after) { version } }`;
  const vars = { id: run.id, after };
  const here = record<{ statusChanged: { version: number } }>(a.wsClient(), query, vars);
  const there = record<{ statusChanged: { version: number } }>(b.wsClient(), query, vars);
  await new Promise((resolve) => setTimeout(resolve, 300));
  statements.a.length = 0;
  statements.b.length = 0;
  let status = 'RUNNING';
  for (let i = 0; i < 40; i++) {
    status = status === 'RUNNING' ? 'PROCESSING' : 'RUNNING';
    expect(
      dataOf(
        await a.gql(
          `mutation($id: ID!, $to: RunStatus!) {
      transitionRun(input: { id: $id, to: $to }) { __typename } }`,
          { id: run.id, to: status },
        ),
      ),
    ).toEqual({ transitionRun: { __typename: 'TransitionAccepted' } });
  }
  const versions = (r: typeof here) => r.values.map((v) => v.statusChanged.version);
  await here.waitFor(40);
  await there.waitFor(40);
  expect(versions(here)).toEqual(Array.from({ length: 40 }, (_, i) => i + 3));
  expect(versions(there)).toEqual(versions(here));
  here.dispose();
  there.dispose();

  const counted = new Map<string, number>();
  for (const q of statements.a) counted.set(kind(q), (counted.get(kind(q)) ?? 0) + 1);
  const summary = JSON.stringify(Object.fromEntries(counted));
  expect(counted.get('transitionDirect'), summary).toBe(40);
  // The rest: the token checks' cache misses, the idle poll, a NOTIFY for the last commits.
  // Before, every change also cost a read of the log and most a NOTIFY. The reaper's and
  // retention's passes come on their own timers whatever the changes, when they fall in.
  const background = statements.a.filter((q) => BACKGROUND.has(kind(q))).length;
  expect(statements.a.length - 40 - background, summary).toBeLessThanOrEqual(12);
  expect(counted.get('tailChangeLog') ?? 0, summary).toBeLessThanOrEqual(3);
});

it('8 clients at once: commits that end out of order still need no read of the log', async () => {
  const project = uniqueProject('round-trips-8');
  const runs = await Promise.all(Array.from({ length: 8 }, () => createRun(a, { project })));
  let after = '';
  for (const run of runs)
    after = (await transitionRun(a, { id: run.id, to: 'RUNNING' })).change!.cursor;
  const ids = runs.map((r) => r.id);
  // After the last of those changes: b may not have read them yet when it subscribes.
  const query = `subscription($ids: [ID!], $after: String) {
    statusChanged(filter: { runIds: $ids }, after: $after) { runId version } }`;
  const there = record<{ statusChanged: { runId: string; version: number } }>(b.wsClient(), query, {
    ids,
    after,
  });
  await new Promise((resolve) => setTimeout(resolve, 300));
  statements.a.length = 0;
  await Promise.all(
    ids.map(async (id) => {
      let status = 'RUNNING';
      for (let i = 0; i < 10; i++) {
        status = status === 'RUNNING' ? 'PROCESSING' : 'RUNNING';
        expect((await transitionRun(a, { id, to: status })).__typename).toBe('TransitionAccepted');
      }
    }),
  );
  await there.waitFor(80);
  for (const id of ids) {
    const versions = there.values
      .filter((v) => v.statusChanged.runId === id)
      .map((v) => v.statusChanged.version);
    expect(versions).toEqual(Array.from({ length: 10 }, (_, i) => i + 3));
  }
  there.dispose();
  const reads = statements.a.filter((q) => kind(q) === 'tailChangeLog').length;
  expect(reads, `${reads} reads of the log for 80 changes`).toBeLessThanOrEqual(8);
});

it('transitionRuns locks its runs with one statement text whatever their number: one prepared statement, not one per batch size', async () => {
  const project = uniqueProject('lock-text');
  const runs = await Promise.all(Array.from({ length: 7 }, () => createRun(a, { project })));
  statements.a.length = 0;
  // Batches of 1, 2 and 4 runs.
  for (const batch of [runs.slice(0, 1), runs.slice(1, 3), runs.slice(3, 7)]) {
    const answer = await a.gql<{ transitionRuns: { __typename: string }[] }>(
      `mutation($inputs: [TransitionRunInput!]!) { transitionRuns(inputs: $inputs) { __typename } }`,
      // With idempotency keys: the full path (a batch of common changes is one statement).
      { inputs: batch.map((r) => ({ id: r.id, to: 'QUEUED', idempotencyKey: `q-${r.id}` })) },
    );
    expect(dataOf(answer).transitionRuns.map((r) => r.__typename)).toEqual(
      batch.map(() => 'TransitionAccepted'),
    );
  }
  const locks = statements.a.filter((q) => q.includes('WITH RECURSIVE up'));
  expect(locks).toHaveLength(3);
  expect(new Set(locks).size).toBe(1);
});

it('a batch of common changes is one statement, delivered on both instances in the batch order; one refusal sends the whole batch the full way', async () => {
  const project = uniqueProject('direct-batch');
  const runs = await Promise.all(Array.from({ length: 5 }, () => createRun(a, { project })));
  const ids = runs.map((r) => r.id);
  const query = `subscription($ids: [ID!]) {
    statusChanged(filter: { runIds: $ids }) { runId to version } }`;
  type Event = { statusChanged: { runId: string; to: string; version: number } };
  const here = record<Event>(a.wsClient(), query, { ids });
  const there = record<Event>(b.wsClient(), query, { ids });
  await new Promise((resolve) => setTimeout(resolve, 300));
  const batch = async (inputs: { id: string; to: string }[]) =>
    dataOf(
      await a.gql<{ transitionRuns: { __typename: string; run?: { status: string } }[] }>(
        `mutation($inputs: [TransitionRunInput!]!) {
          transitionRuns(inputs: $inputs) { __typename ... on TransitionAccepted { run { status } } } }`,
        { inputs },
      ),
    ).transitionRuns;
  statements.a.length = 0;
  // Backwards through the runs, so that the batch order is not the order of their ids.
  const order = [...ids].reverse();
  expect(await batch(order.map((id) => ({ id, to: 'RUNNING' })))).toEqual(
    order.map(() => ({ __typename: 'TransitionAccepted', run: { status: 'RUNNING' } })),
  );
  expect(await batch(order.map((id) => ({ id, to: 'PROCESSING' })))).toEqual(
    order.map(() => ({ __typename: 'TransitionAccepted', run: { status: 'PROCESSING' } })),
  );
  const counted = new Map<string, number>();
  for (const q of statements.a) counted.set(kind(q), (counted.get(kind(q)) ?? 0) + 1);
  const summary = JSON.stringify(Object.fromEntries(counted));
  expect(counted.get('transitionDirectBatch'), summary).toBe(2);
  expect(counted.get('writeTransitions') ?? 0, summary).toBe(0);

  // CREATED is not reachable from PROCESSING: the whole batch goes the full way, which
  // applies the others and refuses that one, as it always did.
  statements.a.length = 0;
  const mixed = order.map((id, i) => ({ id, to: i === 2 ? 'CREATED' : 'RUNNING' }));
  expect((await batch(mixed)).map((r) => r.__typename)).toEqual(
    mixed.map((m) => (m.to === 'CREATED' ? 'IllegalTransition' : 'TransitionAccepted')),
  );
  expect(statements.a.filter((q) => kind(q) === 'writeTransitions')).toHaveLength(1);

  const expected = [
    ...order.map((runId) => ({ runId, to: 'RUNNING', version: 2 })),
    ...order.map((runId) => ({ runId, to: 'PROCESSING', version: 3 })),
    ...mixed
      .filter((m) => m.to === 'RUNNING')
      .map((m) => ({ runId: m.id, to: 'RUNNING', version: 4 })),
  ];
  // Without a cursor a subscription may also see the runs' creation, if its instance had not
  // published it yet: only the changes after it are compared.
  const changes = (r: typeof here) =>
    r.values.map((v) => v.statusChanged).filter((c) => c.version > 1);
  await waitUntil(
    'every change on both instances',
    () => changes(here).length >= expected.length && changes(there).length >= expected.length,
  );
  expect(changes(here)).toEqual(expected);
  expect(changes(there)).toEqual(expected);
  here.dispose();
  there.dispose();
});
