import { expect, it } from 'vitest';
import { createRun, dataOf } from '../support/operations.js';
import { uniqueProject, useRecordingServer } from '../support/server.js';

// The common change reads the run it moved only when the answer shows it (issue 18: turning
// that row into JSON was about an eighth of PostgreSQL's CPU per change). Asked for under any
// fragment, the run is the one the change left; not asked for, it is not read at all.

const { server, statements } = useRecordingServer();

// The run as JSON, and every column of it returned by the UPDATE for that.
const READS_RUN = /to_jsonb\(m\)|r\.\*/;
const lastDirect = (name: string) =>
  statements.filter((s) => s.includes(`/* ${name} */`)).at(-1) ?? '';

interface Answer {
  __typename: string;
  change?: { version: number; to: string };
  run?: { id: string; status: string; version: number; startedAt: string | null };
}

async function transition(id: string, to: string, selection: string, fragments = '') {
  return dataOf(
    await server.gql<{ transitionRun: Answer }>(
      `mutation($id: ID!, $to: RunStatus!) { transitionRun(input: { id: $id, to: $to }) {
        __typename ${selection} } } ${fragments}`,
      { id, to },
    ),
  ).transitionRun;
}

async function stored(id: string) {
  return dataOf(
    await server.gql<{ run: { status: string; version: number; startedAt: string | null } }>(
      `query($id: ID!) { run(id: $id) { status version startedAt } }`,
      { id },
    ),
  ).run;
}

it('transitionRun reads the run only when the answer shows it, under any fragment', async () => {
  const project = uniqueProject('transition-reads');
  const run = await createRun(server, { project });

  const bare = await transition(
    run.id,
    'RUNNING',
    '... on TransitionAccepted { change { version to } }',
  );
  expect(bare).toEqual({ __typename: 'TransitionAccepted', change: { version: 2, to: 'RUNNING' } });
  expect(lastDirect('transitionDirect')).not.toMatch(READS_RUN);
  expect(await stored(run.id)).toMatchObject({ status: 'RUNNING', version: 2 });

  // A named fragment, an alias and an inline fragment each ask for it.
  const named = await transition(
    run.id,
    'PROCESSING',
    '...Moved',
    'fragment Moved on TransitionAccepted { run { id status version startedAt } }',
  );
  expect(lastDirect('transitionDirect')).toMatch(READS_RUN);
  expect(named.run).toEqual({ id: run.id, ...(await stored(run.id)) });
  expect(named.run).toMatchObject({ status: 'PROCESSING', version: 3 });

  const aliased = dataOf(
    await server.gql<{ t: { moved: Answer['run'] } }>(
      `mutation($id: ID!) { t: transitionRun(input: { id: $id, to: RUNNING }) {
        ... on TransitionAccepted { moved: run { id status version startedAt } } } }`,
      { id: run.id },
    ),
  ).t;
  expect(aliased.moved).toEqual({ id: run.id, ...(await stored(run.id)) });
  expect(aliased.moved).toMatchObject({ status: 'RUNNING', version: 4 });
});

it('transitionRuns does the same for a batch, and concurrent answers each get their own', async () => {
  const project = uniqueProject('transition-reads-batch');
  const runs = await Promise.all(Array.from({ length: 8 }, () => createRun(server, { project })));
  const batch = (ids: string[], selection: string) =>
    server.gql<{ transitionRuns: Answer[] }>(
      `mutation($inputs: [TransitionRunInput!]!) { transitionRuns(inputs: $inputs) {
        __typename ... on TransitionAccepted { ${selection} } } }`,
      { inputs: ids.map((id) => ({ id, to: 'RUNNING' })) },
    );

  const unread = dataOf(await batch([runs[0]!.id, runs[1]!.id], 'change { version to }'));
  expect(unread.transitionRuns).toEqual([
    { __typename: 'TransitionAccepted', change: { version: 2, to: 'RUNNING' } },
    { __typename: 'TransitionAccepted', change: { version: 2, to: 'RUNNING' } },
  ]);
  expect(lastDirect('transitionDirectBatch')).not.toMatch(READS_RUN);

  // Three batches at once, two asking for the runs: each answer is its own runs' state.
  const pairs = [runs.slice(2, 4), runs.slice(4, 6), runs.slice(6, 8)].map((p) =>
    p.map((r) => r.id),
  );
  const answers = await Promise.all(
    pairs.map((ids, i) =>
      batch(ids, i === 1 ? 'change { version }' : 'run { id status version startedAt }'),
    ),
  );
  for (const [i, ids] of pairs.entries()) {
    const outcomes = dataOf(answers[i]!).transitionRuns;
    for (const [j, id] of ids.entries()) {
      if (i === 1)
        expect(outcomes[j]).toEqual({ __typename: 'TransitionAccepted', change: { version: 2 } });
      else expect(outcomes[j]!.run).toEqual({ id, ...(await stored(id)), status: 'RUNNING' });
    }
  }
  expect(
    statements.some((s) => s.includes('/* transitionDirectBatch */') && READS_RUN.test(s)),
  ).toBe(true);
});
