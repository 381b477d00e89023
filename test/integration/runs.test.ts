import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  createRun,
  dataOf,
  getHistory,
  RUN_FIELDS,
  sleep,
  transitionRun,
  type RunData,
} from '../support/operations.js';
import { useServer, uniqueProject, type GqlResponse } from '../support/server.js';

// Mutation semantics, checked through what a client reads back over real HTTP and PostgreSQL.

const server = useServer();

interface StatusInfoData {
  status: string;
  category: string;
  color: string;
  isFinal: boolean;
  allowedNext: string[];
}

const LIFECYCLE = JSON.parse(
  readFileSync(new URL('../fixtures/lifecycle.json', import.meta.url), 'utf8'),
) as { statuses: StatusInfoData[] };

function allowedFrom(status: string): string[] {
  const info = LIFECYCLE.statuses.find((s) => s.status === status);
  if (!info) throw new Error(`no status ${status} in lifecycle.json`);
  return info.allowedNext;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const MISSING_ID = '00000000-0000-4000-8000-00000000abcd';

interface Change {
  cursor: string;
  runId: string;
  from: string | null;
  to: string;
  version: number;
  reason: string | null;
  message: string | null;
  at: string;
}

interface Result {
  __typename: string;
  run?: RunData;
  change?: Change | null;
  [field: string]: unknown;
}

const CHANGE_FIELDS = 'cursor runId from to version reason message at';
const RESULT = `
  __typename
  ... on TransitionAccepted { run { ${RUN_FIELDS} } change { ${CHANGE_FIELDS} } }
  ... on IllegalTransition { runId from to allowed message }
  ... on TransitionConflict { runId expectedStatus expectedVersion actualStatus actualVersion message }
  ... on RunNotFound { runId message }`;

const TRANSITION = `mutation($input: TransitionRunInput!) { transitionRun(input: $input) { ${RESULT} } }`;
const TRANSITIONS = `mutation($inputs: [TransitionRunInput!]!) { transitionRuns(inputs: $inputs) { ${RESULT} } }`;
const PROGRESS = `mutation($input: ReportProgressInput!) { reportProgress(input: $input) { ${RUN_FIELDS} } }`;
const HEARTBEAT = `mutation($id: ID!) { heartbeat(id: $id) { ${RUN_FIELDS} } }`;
const RECORD = `mutation($input: RecordMeasurementsInput!) { recordMeasurements(input: $input) }`;

async function transition(input: Record<string, unknown>): Promise<Result> {
  return dataOf(await server.gql<{ transitionRun: Result }>(TRANSITION, { input })).transitionRun;
}

async function transitionMany(inputs: Record<string, unknown>[]): Promise<Result[]> {
  return dataOf(await server.gql<{ transitionRuns: Result[] }>(TRANSITIONS, { inputs }))
    .transitionRuns;
}

/** Move a run along `path`, each step expected to be an accepted change. */
async function walk(id: string, path: string[]): Promise<Result[]> {
  const results: Result[] = [];
  for (const to of path) {
    const result = await transition({ id, to });
    expect(result.__typename, `${to}: ${JSON.stringify(result)}`).toBe('TransitionAccepted');
    expect(result.change?.to).toBe(to);
    results.push(result);
  }
  return results;
}

async function readRun(id: string): Promise<RunData | null> {
  const response = await server.gql<{ run: RunData | null }>(
    `query($id: ID!) { run(id: $id) { ${RUN_FIELDS} } }`,
    { id },
  );
  return dataOf(response).run;
}

async function mustReadRun(id: string): Promise<RunData> {
  const run = await readRun(id);
  if (!run) throw new Error(`run ${id} not found`);
  return run;
}

async function history(id: string): Promise<Change[]> {
  const response = await server.gql<{
    run: { statusHistory: { edges: { node: Change }[]; pageInfo: { hasNextPage: boolean } } };
  }>(
    `query($id: ID!) { run(id: $id) { statusHistory(first: 500) {
       edges { node { ${CHANGE_FIELDS} } } pageInfo { hasNextPage } } } }`,
    { id },
  );
  const connection = dataOf(response).run.statusHistory;
  expect(connection.pageInfo.hasNextPage).toBe(false);
  return connection.edges.map((e) => e.node);
}

interface Measurement {
  name: string;
  value: number;
  step: number | null;
  at: string;
}

async function readMeasurements(
  id: string,
): Promise<{ all: Measurement[]; latest: Measurement[] }> {
  const response = await server.gql<{
    run: { measurements: { edges: { node: Measurement }[] }; latestMeasurements: Measurement[] };
  }>(
    `query($id: ID!) { run(id: $id) {
       measurements(first: 500) { edges { node { name value step at } } }
       latestMeasurements { name value step at } } }`,
    { id },
  );
  const run = dataOf(response).run;
  return {
    all: run.measurements.edges.map((e) => e.node),
    latest: [...run.latestMeasurements].sort((a, b) => a.name.localeCompare(b.name)),
  };
}

type GqlError = NonNullable<GqlResponse<unknown>['errors']>[number];

/** The single error of a refused request; the root field must be absent from the data. */
async function refusal(
  query: string,
  variables: Record<string, unknown>,
  rootField: string,
): Promise<GqlError> {
  const response = await server.gql<Record<string, unknown>>(query, variables);
  expect(response.errors, JSON.stringify(response)).toHaveLength(1);
  expect(response.data?.[rootField] ?? null).toBeNull();
  return response.errors![0]!;
}

function expectBadInput(error: GqlError, field: string) {
  expect(error.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
  expect(error.message).toContain(field);
}

const iso = (base: number, seconds: number) => new Date(base + seconds * 1000).toISOString();

describe('createRun', () => {
  it('returns every field of the new run, and one creation row in its history', async () => {
    const project = uniqueProject();
    const meta = { lr: 0.001, layers: [64, 128], owner: { team: 'vision' }, debug: false };
    const run = await createRun(server, {
      project,
      name: 'train resnet',
      tags: ['gpu', 'nightly', 'gpu', 'nightly'],
      meta,
    });
    expect(run).toEqual({
      id: expect.stringMatching(UUID),
      project,
      name: 'train resnet',
      tags: ['gpu', 'nightly'],
      meta,
      status: 'CREATED',
      category: 'PENDING',
      color: '#485563',
      version: 1,
      attempt: 1,
      maxRetries: 0,
      isDone: false,
      isFinal: false,
      isRunning: false,
      isPending: true,
      isStoppable: true,
      allowedTransitions: allowedFrom('CREATED'),
      progress: null,
      phase: null,
      stopMessage: null,
      createdAt: expect.any(String),
      updatedAt: run['createdAt'],
      startedAt: null,
      finishedAt: null,
      duration: null,
      heartbeatAt: null,
    });
    expect(new Date(run['createdAt'] as string).toISOString()).toBe(run['createdAt']);
    // Reading it back gives the same run.
    expect(await readRun(run.id)).toEqual(run);

    const rows = await history(run.id);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      runId: run.id,
      from: null,
      to: 'CREATED',
      version: 1,
      message: null,
      at: run['createdAt'],
    });
  });

  it('defaults: no name, no tags, no meta', async () => {
    const project = uniqueProject();
    const run = await createRun(server, { project });
    expect(run).toMatchObject({ project, name: null, tags: [], meta: null, version: 1 });
  });

  it('the same idempotencyKey in the same project returns the first run and creates nothing', async () => {
    const project = uniqueProject();
    const first = await createRun(server, {
      project,
      name: 'first',
      tags: ['a'],
      idempotencyKey: 'job-7',
    });
    const again = await createRun(server, {
      project,
      name: 'second',
      tags: ['b'],
      idempotencyKey: 'job-7',
    });
    expect(again).toEqual(first);
    expect(again['name']).toBe('first');

    const listed = dataOf(
      await server.gql<{ runs: { edges: { node: { id: string } }[] } }>(
        `query($p: String!) { runs(filter: { project: $p }) { edges { node { id } } } }`,
        { p: project },
      ),
    ).runs.edges.map((e) => e.node.id);
    expect(listed).toEqual([first.id]);
    expect(await history(first.id)).toHaveLength(1);
    const log = dataOf(
      await server.gql<{ statusChanges: { edges: { node: { runId: string } }[] } }>(
        `query($p: String!) { statusChanges(filter: { projects: [$p] }) { edges { node { runId } } } }`,
        { p: project },
      ),
    ).statusChanges.edges;
    expect(log).toEqual([{ node: { runId: first.id } }]);

    // A key without a previous run in the project makes a new run.
    const other = await createRun(server, { project, idempotencyKey: 'job-8' });
    expect(other.id).not.toBe(first.id);
  });

  it('the same idempotencyKey in another project creates a new run', async () => {
    const projectA = uniqueProject();
    const projectB = uniqueProject();
    const a = await createRun(server, { project: projectA, idempotencyKey: 'shared-key' });
    const b = await createRun(server, { project: projectB, idempotencyKey: 'shared-key' });
    expect(b.id).not.toBe(a.id);
    expect(a.project).toBe(projectA);
    expect(b.project).toBe(projectB);
    expect(await readRun(a.id)).toEqual(a);
    expect(await readRun(b.id)).toEqual(b);
  });
});

describe('transitionRun', () => {
  it('an accepted change answers the run after it and the change, version +1 each time', async () => {
    const run = await createRun(server, { project: uniqueProject() });
    const queued = await transition({
      id: run.id,
      to: 'QUEUED',
      reason: 'SUBMITTED',
      message: 'queued on pool a',
    });
    expect(queued).toEqual({
      __typename: 'TransitionAccepted',
      run: {
        ...run,
        status: 'QUEUED',
        category: 'QUEUED',
        color: '#485563',
        version: 2,
        isPending: true,
        isStoppable: true,
        allowedTransitions: allowedFrom('QUEUED'),
        updatedAt: queued.change!.at,
      },
      change: {
        cursor: expect.any(String),
        runId: run.id,
        from: 'CREATED',
        to: 'QUEUED',
        version: 2,
        reason: 'SUBMITTED',
        message: 'queued on pool a',
        at: expect.any(String),
      },
    });

    const running = await transition({ id: run.id, to: 'RUNNING' });
    expect(running.__typename).toBe('TransitionAccepted');
    expect(running.change).toEqual({
      cursor: expect.any(String),
      runId: run.id,
      from: 'QUEUED',
      to: 'RUNNING',
      version: 3,
      reason: null,
      message: null,
      at: expect.any(String),
    });
    expect(running.run).toMatchObject({
      id: run.id,
      status: 'RUNNING',
      category: 'RUNNING',
      color: '#2e77aa',
      version: 3,
      isRunning: true,
      isPending: false,
      allowedTransitions: allowedFrom('RUNNING'),
      startedAt: running.change!.at,
      updatedAt: running.change!.at,
    });
    expect(running.change!.cursor).not.toBe(queued.change!.cursor);
    // What the answers said is what a reader sees.
    const { duration: _d1, ...readBack } = await mustReadRun(run.id);
    const { duration: _d2, ...answered } = running.run!;
    expect(readBack).toEqual(answered);
    const rows = await history(run.id);
    expect(rows.map((r) => [r.from, r.to, r.version])).toEqual([
      [null, 'CREATED', 1],
      ['CREATED', 'QUEUED', 2],
      ['QUEUED', 'RUNNING', 3],
    ]);
    expect(rows.slice(1)).toEqual([queued.change, running.change]);
  });

  it('a change to the current status is an accepted no-op: change null, nothing written', async () => {
    const run = await createRun(server, { project: uniqueProject() });
    await walk(run.id, ['QUEUED']);
    const before = await mustReadRun(run.id);
    const historyBefore = await history(run.id);

    const noop = await transition({ id: run.id, to: 'QUEUED', message: 'again' });
    expect(noop).toEqual({ __typename: 'TransitionAccepted', run: before, change: null });
    expect(await mustReadRun(run.id)).toEqual(before);
    expect(await history(run.id)).toEqual(historyBefore);

    // Even CREATED -> CREATED on a new run and SUCCEEDED -> SUCCEEDED on a final one.
    const fresh = await createRun(server, { project: uniqueProject() });
    expect(await transition({ id: fresh.id, to: 'CREATED' })).toEqual({
      __typename: 'TransitionAccepted',
      run: fresh,
      change: null,
    });
    await walk(run.id, ['RUNNING', 'SUCCEEDED']);
    const done = await mustReadRun(run.id);
    expect(done.version).toBe(4);
    expect(await transition({ id: run.id, to: 'SUCCEEDED' })).toEqual({
      __typename: 'TransitionAccepted',
      run: done,
      change: null,
    });
    expect(await history(run.id)).toHaveLength(4);
  });

  it('an illegal change is refused with the allowed statuses, and nothing is written', async () => {
    const run = await createRun(server, { project: uniqueProject() });
    await walk(run.id, ['QUEUED']);
    const before = await mustReadRun(run.id);

    const back = await transition({ id: run.id, to: 'CREATED' });
    expect(back).toEqual({
      __typename: 'IllegalTransition',
      runId: run.id,
      from: 'QUEUED',
      to: 'CREATED',
      allowed: allowedFrom('QUEUED'),
      message: expect.stringContaining('QUEUED'),
    });
    expect(await mustReadRun(run.id)).toEqual(before);

    await walk(run.id, ['RUNNING', 'SUCCEEDED']);
    const doneHistory = await history(run.id);
    for (const to of ['RUNNING', 'RESUMING', 'RETRYING', 'FAILED', 'STOPPING']) {
      expect(await transition({ id: run.id, to })).toEqual({
        __typename: 'IllegalTransition',
        runId: run.id,
        from: 'SUCCEEDED',
        to,
        allowed: [],
        message: expect.stringContaining('SUCCEEDED'),
      });
    }
    expect(await history(run.id)).toEqual(doneHistory);
    expect((await mustReadRun(run.id)).version).toBe(4);
  });

  it('expectedStatus / expectedVersion mismatches answer TransitionConflict with the actual values', async () => {
    const run = await createRun(server, { project: uniqueProject() });

    expect(await transition({ id: run.id, to: 'RUNNING', expectedStatus: 'QUEUED' })).toEqual({
      __typename: 'TransitionConflict',
      runId: run.id,
      expectedStatus: 'QUEUED',
      expectedVersion: null,
      actualStatus: 'CREATED',
      actualVersion: 1,
      message: expect.stringContaining('CREATED'),
    });
    expect(await transition({ id: run.id, to: 'RUNNING', expectedVersion: 5 })).toEqual({
      __typename: 'TransitionConflict',
      runId: run.id,
      expectedStatus: null,
      expectedVersion: 5,
      actualStatus: 'CREATED',
      actualVersion: 1,
      message: expect.stringContaining('CREATED'),
    });
    // One of the two wrong is enough.
    expect(
      await transition({
        id: run.id,
        to: 'RUNNING',
        expectedStatus: 'CREATED',
        expectedVersion: 2,
      }),
    ).toMatchObject({
      __typename: 'TransitionConflict',
      expectedStatus: 'CREATED',
      expectedVersion: 2,
      actualStatus: 'CREATED',
      actualVersion: 1,
    });
    // A stale expectation wins over a no-op, and over an illegal target.
    expect(await transition({ id: run.id, to: 'CREATED', expectedVersion: 3 })).toMatchObject({
      __typename: 'TransitionConflict',
      actualVersion: 1,
    });
    expect(await transition({ id: run.id, to: 'RESUMING', expectedVersion: 3 })).toMatchObject({
      __typename: 'TransitionConflict',
      actualVersion: 1,
    });
    expect(await mustReadRun(run.id)).toEqual(run);
    expect(await history(run.id)).toHaveLength(1);

    const accepted = await transition({
      id: run.id,
      to: 'RUNNING',
      expectedStatus: 'CREATED',
      expectedVersion: 1,
    });
    expect(accepted.__typename).toBe('TransitionAccepted');
    expect(accepted.change).toMatchObject({ from: 'CREATED', to: 'RUNNING', version: 2 });
    const next = await transition({ id: run.id, to: 'SUCCEEDED', expectedVersion: 2 });
    expect(next.change).toMatchObject({ from: 'RUNNING', to: 'SUCCEEDED', version: 3 });
    expect(await history(run.id)).toHaveLength(3);
  });

  it('answers RunNotFound for a valid id that is no run', async () => {
    expect(await transition({ id: MISSING_ID, to: 'RUNNING' })).toEqual({
      __typename: 'RunNotFound',
      runId: MISSING_ID,
      message: expect.stringContaining(MISSING_ID),
    });
  });

  it('a malformed id is BAD_USER_INPUT naming input.id', async () => {
    const error = await refusal(
      TRANSITION,
      { input: { id: 'nope', to: 'RUNNING' } },
      'transitionRun',
    );
    expectBadInput(error, 'input.id');
  });
});

describe('transitionRun idempotencyKey', () => {
  it('a replay of an accepted change returns the same change and writes nothing', async () => {
    const run = await createRun(server, { project: uniqueProject() });
    const first = await transition({ id: run.id, to: 'QUEUED', idempotencyKey: 'k-1' });
    expect(first.change).toMatchObject({ from: 'CREATED', to: 'QUEUED', version: 2 });

    const replay = await transition({ id: run.id, to: 'QUEUED', idempotencyKey: 'k-1' });
    expect(replay).toEqual(first);
    expect(await history(run.id)).toHaveLength(2);

    // Still the first answer after the run moved on, even for a request that differs.
    await walk(run.id, ['RUNNING']);
    const historyNow = await history(run.id);
    const late = await transition({ id: run.id, to: 'FAILED', idempotencyKey: 'k-1' });
    expect(late.__typename).toBe('TransitionAccepted');
    expect(late.change).toEqual(first.change);
    expect(late.run).toMatchObject({ id: run.id, status: 'RUNNING', version: 3 });
    expect(await history(run.id)).toEqual(historyNow);
    expect(await mustReadRun(run.id)).toMatchObject({ status: 'RUNNING', version: 3 });
  });

  it('a replay of a refusal returns the same refusal, even when the request has become legal', async () => {
    const run = await createRun(server, { project: uniqueProject() });
    const refused = await transition({ id: run.id, to: 'SUCCEEDED', idempotencyKey: 'finish' });
    expect(refused).toEqual({
      __typename: 'IllegalTransition',
      runId: run.id,
      from: 'CREATED',
      to: 'SUCCEEDED',
      allowed: allowedFrom('CREATED'),
      message: expect.any(String),
    });

    await walk(run.id, ['RUNNING']);
    const before = await mustReadRun(run.id);
    const historyBefore = await history(run.id);
    expect(await transition({ id: run.id, to: 'SUCCEEDED', idempotencyKey: 'finish' })).toEqual(
      refused,
    );
    const { duration: _a, ...beforeFixed } = before;
    const { duration: _b, ...after } = await mustReadRun(run.id);
    expect(after).toEqual(beforeFixed);
    expect(await history(run.id)).toEqual(historyBefore);

    // Without the key the same request is legal now.
    const fresh = await transition({ id: run.id, to: 'SUCCEEDED' });
    expect(fresh.change).toMatchObject({ from: 'RUNNING', to: 'SUCCEEDED', version: 3 });
  });

  it('a replay of a conflict returns the first conflict with its actual values then', async () => {
    const run = await createRun(server, { project: uniqueProject() });
    const conflict = await transition({
      id: run.id,
      to: 'QUEUED',
      expectedVersion: 2,
      idempotencyKey: 'cas',
    });
    expect(conflict).toMatchObject({
      __typename: 'TransitionConflict',
      expectedVersion: 2,
      actualStatus: 'CREATED',
      actualVersion: 1,
    });
    await walk(run.id, ['COMPILED']); // now at version 2: the expectation would match
    expect(
      await transition({ id: run.id, to: 'QUEUED', expectedVersion: 2, idempotencyKey: 'cas' }),
    ).toEqual(conflict);
    expect(await mustReadRun(run.id)).toMatchObject({ status: 'COMPILED', version: 2 });
  });

  it('a replay of a no-op stays a no-op after the run moved on', async () => {
    const run = await createRun(server, { project: uniqueProject() });
    const noop = await transition({ id: run.id, to: 'CREATED', idempotencyKey: 'stay' });
    expect(noop).toMatchObject({ __typename: 'TransitionAccepted', change: null });
    await walk(run.id, ['QUEUED']);
    // CREATED is never re-entered; the replay returns the first answer (no change) and writes nothing.
    const replay = await transition({ id: run.id, to: 'CREATED', idempotencyKey: 'stay' });
    expect(replay.__typename).toBe('TransitionAccepted');
    expect(replay.change).toBeNull();
    expect(replay.run).toMatchObject({ status: 'QUEUED', version: 2 });
    expect(await history(run.id)).toHaveLength(2);
  });

  it('the same key on another run is independent', async () => {
    const project = uniqueProject();
    const a = await createRun(server, { project });
    const b = await createRun(server, { project });
    const onA = await transition({ id: a.id, to: 'QUEUED', idempotencyKey: 'same' });
    const onB = await transition({ id: b.id, to: 'RUNNING', idempotencyKey: 'same' });
    expect(onA.change).toMatchObject({ runId: a.id, from: 'CREATED', to: 'QUEUED', version: 2 });
    expect(onB.change).toMatchObject({ runId: b.id, from: 'CREATED', to: 'RUNNING', version: 2 });
    expect(onB.change!.cursor).not.toBe(onA.change!.cursor);
    expect((await history(a.id)).map((r) => r.to)).toEqual(['CREATED', 'QUEUED']);
    expect((await history(b.id)).map((r) => r.to)).toEqual(['CREATED', 'RUNNING']);
  });
});

describe('startedAt, finishedAt, stopMessage, duration', () => {
  it.each(['STARTING', 'INITIALIZING', 'RUNNING', 'PROCESSING'])(
    'the first change into %s sets startedAt',
    async (to) => {
      const run = await createRun(server, { project: uniqueProject() });
      const [result] = await walk(run.id, [to]);
      expect(result!.run).toMatchObject({ startedAt: result!.change!.at, finishedAt: null });
    },
  );

  it('statuses before the executor start leave startedAt unset', async () => {
    const run = await createRun(server, { project: uniqueProject() });
    const results = await walk(run.id, ['ON_SCHEDULE', 'COMPILED', 'QUEUED', 'SCHEDULED']);
    for (const result of results) {
      expect(result.run).toMatchObject({ startedAt: null, finishedAt: null, duration: null });
    }
  });

  it('follow the run through start, failure, retry, stop and resume', async () => {
    const run = await createRun(server, { project: uniqueProject() });
    const [, starting, running] = await walk(run.id, ['SCHEDULED', 'STARTING', 'RUNNING']);
    const startedAt = starting!.change!.at;
    expect(running!.run).toMatchObject({
      startedAt,
      finishedAt: null,
      stopMessage: null,
    });
    expect(typeof running!.run!['duration']).toBe('number');

    const failed = await transition({
      id: run.id,
      to: 'FAILED',
      reason: 'OOM',
      message: 'out of memory',
    });
    const failedAt = failed.change!.at;
    expect(failed.run).toMatchObject({
      status: 'FAILED',
      startedAt,
      finishedAt: failedAt,
      stopMessage: 'out of memory',
      duration: (Date.parse(failedAt) - Date.parse(startedAt)) / 1000,
      isDone: true,
      isFinal: false,
      isStoppable: false,
    });
    expect(await mustReadRun(run.id)).toMatchObject({
      finishedAt: failedAt,
      stopMessage: 'out of memory',
      duration: (Date.parse(failedAt) - Date.parse(startedAt)) / 1000,
    });

    // Retry clears the finish; startedAt stays the first start.
    const [retrying, rerunning] = await walk(run.id, ['RETRYING', 'RUNNING']);
    expect(retrying!.run).toMatchObject({ startedAt, finishedAt: null, stopMessage: null });
    expect(rerunning!.run).toMatchObject({ startedAt, finishedAt: null, stopMessage: null });

    const stopped = await transition({ id: run.id, to: 'STOPPED', message: 'stopped by alice' });
    const stoppedAt = stopped.change!.at;
    expect(stopped.run).toMatchObject({
      startedAt,
      finishedAt: stoppedAt,
      stopMessage: 'stopped by alice',
      duration: (Date.parse(stoppedAt) - Date.parse(startedAt)) / 1000,
    });

    // Resume clears it too.
    const [resuming] = await walk(run.id, ['RESUMING']);
    expect(resuming!.run).toMatchObject({ startedAt, finishedAt: null, stopMessage: null });

    // A DONE change without a message leaves stopMessage null.
    const [, succeeded] = await walk(run.id, ['RUNNING', 'SUCCEEDED']);
    expect(succeeded!.run).toMatchObject({
      startedAt,
      finishedAt: succeeded!.change!.at,
      stopMessage: null,
      isFinal: true,
    });
    const read = await mustReadRun(run.id);
    expect(read).toMatchObject({
      startedAt,
      finishedAt: succeeded!.change!.at,
      duration: (Date.parse(succeeded!.change!.at) - Date.parse(startedAt)) / 1000,
    });
  });

  // Issue 15, defect 2: the stop request's message is the stop message of the stop it caused.
  it("stopRun's message is the stop message once the stop lands, unless the landing says its own", async () => {
    for (const landing of [{}, { message: 'killed by the scheduler' }]) {
      const run = await createRun(server, { project: uniqueProject() });
      await walk(run.id, ['RUNNING']);
      const stopping = dataOf(
        await server.gql<{ stopRun: Result }>(
          `mutation($id: ID!) { stopRun(id: $id, message: "budget exceeded") { ${RESULT} } }`,
          { id: run.id },
        ),
      ).stopRun;
      expect(stopping.run).toMatchObject({ status: 'STOPPING', stopMessage: 'budget exceeded' });
      const stopped = await transition({ id: run.id, to: 'STOPPED', ...landing });
      const expected = landing.message ?? 'budget exceeded';
      expect(stopped.run).toMatchObject({ status: 'STOPPED', stopMessage: expected });
      expect(await mustReadRun(run.id)).toMatchObject({ stopMessage: expected });
      // Resumed, the run is no longer stopped: the message goes with the stop.
      const [resuming] = await walk(run.id, ['RESUMING']);
      expect(resuming!.run).toMatchObject({ stopMessage: null });
    }
  });

  // Issue 15, defect 3: Perceval's RUNNING -> SUSPENDED -> RUNNING (a suspended job resumes).
  it('a SUSPENDED run reported running again is resumed: RESUMING then the status, in one change', async () => {
    const run = await createRun(server, { project: uniqueProject() });
    await walk(run.id, ['RUNNING', 'SUSPENDED']);
    const resumed = await transition({ id: run.id, to: 'RUNNING', message: 'back' });
    expect(resumed).toMatchObject({
      __typename: 'TransitionAccepted',
      run: { status: 'RUNNING' },
      change: { from: 'RESUMING', to: 'RUNNING' },
    });
    const history = await getHistory(server, run.id);
    expect(history.slice(-3)).toMatchObject([
      { from: 'RUNNING', to: 'SUSPENDED' },
      { from: 'SUSPENDED', to: 'RESUMING', reason: 'RESUME' },
      { from: 'RESUMING', to: 'RUNNING', message: 'back' },
    ]);
    const [succeeded] = await walk(run.id, ['SUCCEEDED']);
    expect(succeeded!.run).toMatchObject({ status: 'SUCCEEDED' });
    // Only statuses RESUMING leads to are implied: SUSPENDED -> SUCCEEDED stays illegal.
    const other = await createRun(server, { project: uniqueProject() });
    await walk(other.id, ['RUNNING', 'SUSPENDED']);
    expect(await transition({ id: other.id, to: 'SUCCEEDED' })).toMatchObject({
      __typename: 'IllegalTransition',
    });
  });

  it('a run that finishes without ever starting has a finish but no start and no duration', async () => {
    const run = await createRun(server, { project: uniqueProject() });
    const skipped = await transition({ id: run.id, to: 'SKIPPED', message: 'memoized' });
    expect(skipped.run).toMatchObject({
      startedAt: null,
      finishedAt: skipped.change!.at,
      stopMessage: 'memoized',
      duration: null,
    });
  });
});

describe('status flags', () => {
  const cases: {
    status: string;
    path: string[];
    category: string;
    color: string;
    flags: Record<string, boolean>;
  }[] = [
    {
      status: 'CREATED',
      path: [],
      category: 'PENDING',
      color: '#485563',
      flags: {
        isDone: false,
        isFinal: false,
        isRunning: false,
        isPending: true,
        isStoppable: true,
      },
    },
    {
      status: 'QUEUED',
      path: ['QUEUED'],
      category: 'QUEUED',
      color: '#485563',
      flags: {
        isDone: false,
        isFinal: false,
        isRunning: false,
        isPending: true,
        isStoppable: true,
      },
    },
    {
      status: 'SCHEDULED',
      path: ['SCHEDULED'],
      category: 'RUNNING',
      color: '#2e77aa',
      flags: {
        isDone: false,
        isFinal: false,
        isRunning: true,
        isPending: false,
        isStoppable: true,
      },
    },
    {
      status: 'WARNING',
      path: ['RUNNING', 'WARNING'],
      category: 'WARNING',
      color: '#aa9e4a',
      flags: {
        isDone: false,
        isFinal: false,
        isRunning: false,
        isPending: false,
        isStoppable: true,
      },
    },
    {
      status: 'STOPPING',
      path: ['RUNNING', 'STOPPING'],
      category: 'STOPPING',
      color: '#aa9e4a',
      flags: {
        isDone: false,
        isFinal: false,
        isRunning: false,
        isPending: false,
        isStoppable: false,
      },
    },
    {
      status: 'RETRYING',
      path: ['FAILED', 'RETRYING'],
      category: 'PENDING',
      color: '#aa9e4a',
      flags: {
        isDone: false,
        isFinal: false,
        isRunning: false,
        isPending: true,
        isStoppable: true,
      },
    },
    {
      status: 'FAILED',
      path: ['FAILED'],
      category: 'DONE',
      color: '#aa310f',
      flags: {
        isDone: true,
        isFinal: false,
        isRunning: false,
        isPending: false,
        isStoppable: false,
      },
    },
    {
      status: 'SUCCEEDED',
      path: ['RUNNING', 'SUCCEEDED'],
      category: 'DONE',
      color: '#1aaa55',
      flags: {
        isDone: true,
        isFinal: true,
        isRunning: false,
        isPending: false,
        isStoppable: false,
      },
    },
  ];

  it.each(cases)('$status', async ({ status, path, category, color, flags }) => {
    const run = await createRun(server, { project: uniqueProject() });
    await walk(run.id, path);
    expect(await mustReadRun(run.id)).toMatchObject({
      status,
      category,
      color,
      ...flags,
      allowedTransitions: allowedFrom(status),
      version: 1 + path.length,
    });
  });
});

describe('transitionRuns', () => {
  it('applies each change on its own, in order, each seeing the ones before', async () => {
    const project = uniqueProject();
    const a = await createRun(server, { project });
    const b = await createRun(server, { project });
    const results = await transitionMany([
      { id: a.id, to: 'QUEUED', reason: 'first' },
      { id: a.id, to: 'CREATED' },
      { id: MISSING_ID, to: 'RUNNING' },
      { id: b.id, to: 'SUCCEEDED' },
      { id: a.id, to: 'RUNNING', expectedStatus: 'QUEUED', expectedVersion: 2 },
      { id: a.id, to: 'FAILED', expectedVersion: 2 },
    ]);
    expect(results.map((r) => r.__typename)).toEqual([
      'TransitionAccepted',
      'IllegalTransition',
      'RunNotFound',
      'IllegalTransition',
      'TransitionAccepted',
      'TransitionConflict',
    ]);
    expect(results[0]!.change).toEqual({
      cursor: expect.any(String),
      runId: a.id,
      from: 'CREATED',
      to: 'QUEUED',
      version: 2,
      reason: 'first',
      message: null,
      at: expect.any(String),
    });
    // "The run after the change": each answer shows the run right after its own change.
    expect(results[0]!.run).toMatchObject({ status: 'QUEUED', version: 2 });
    expect(results[4]!.run).toMatchObject({ status: 'RUNNING', version: 3 });
    expect(results[1]).toEqual({
      __typename: 'IllegalTransition',
      runId: a.id,
      from: 'QUEUED',
      to: 'CREATED',
      allowed: allowedFrom('QUEUED'),
      message: expect.any(String),
    });
    expect(results[2]).toEqual({
      __typename: 'RunNotFound',
      runId: MISSING_ID,
      message: expect.stringContaining(MISSING_ID),
    });
    expect(results[3]).toMatchObject({
      runId: b.id,
      from: 'CREATED',
      to: 'SUCCEEDED',
      allowed: allowedFrom('CREATED'),
    });
    expect(results[4]!.change).toMatchObject({
      runId: a.id,
      from: 'QUEUED',
      to: 'RUNNING',
      version: 3,
    });
    expect(results[4]!.run).toMatchObject({ id: a.id, status: 'RUNNING', version: 3 });
    expect(results[5]).toMatchObject({
      runId: a.id,
      expectedVersion: 2,
      actualStatus: 'RUNNING',
      actualVersion: 3,
    });

    expect((await history(a.id)).slice(1)).toEqual([results[0]!.change, results[4]!.change]);
    expect(await history(b.id)).toHaveLength(1);
    expect(await mustReadRun(a.id)).toMatchObject({ status: 'RUNNING', version: 3 });
    expect(await mustReadRun(b.id)).toEqual(b);
  });

  it('the same idempotencyKey twice in one batch gives the first answer twice', async () => {
    const run = await createRun(server, { project: uniqueProject() });
    const results = await transitionMany([
      { id: run.id, to: 'QUEUED', idempotencyKey: 'dup' },
      { id: run.id, to: 'RUNNING', idempotencyKey: 'dup' },
      { id: run.id, to: 'SUCCEEDED', idempotencyKey: 'other' },
      { id: run.id, to: 'SUCCEEDED', idempotencyKey: 'other' },
    ]);
    expect(results[0]!.change).toMatchObject({ from: 'CREATED', to: 'QUEUED', version: 2 });
    expect(results[1]).toEqual(results[0]);
    expect(results[2]).toMatchObject({
      __typename: 'IllegalTransition',
      from: 'QUEUED',
      to: 'SUCCEEDED',
    });
    expect(results[3]).toEqual(results[2]);
    expect(await history(run.id)).toHaveLength(2);
    expect(await mustReadRun(run.id)).toMatchObject({ status: 'QUEUED', version: 2 });
    // And a later single request with the key gets that answer too.
    const later = await transition({ id: run.id, to: 'RUNNING', idempotencyKey: 'dup' });
    expect(later.change).toEqual(results[0]!.change);
  });

  it('a batch over 500 is BAD_USER_INPUT naming inputs, and nothing of it is written', async () => {
    const run = await createRun(server, { project: uniqueProject() });
    const inputs = [
      { id: run.id, to: 'QUEUED' },
      ...Array.from({ length: 500 }, () => ({ id: run.id, to: 'RUNNING' })),
    ];
    expect(inputs).toHaveLength(501);
    const error = await refusal(TRANSITIONS, { inputs }, 'transitionRuns');
    expectBadInput(error, 'inputs');
    expect(await mustReadRun(run.id)).toEqual(run);
    expect(await history(run.id)).toHaveLength(1);
  });

  it('a batch of exactly 500 is accepted', async () => {
    const run = await createRun(server, { project: uniqueProject() });
    const inputs = [
      { id: run.id, to: 'QUEUED' },
      ...Array.from({ length: 499 }, () => ({ id: run.id, to: 'QUEUED' })),
    ];
    const results = await transitionMany(inputs);
    expect(results).toHaveLength(500);
    expect(results[0]!.change).toMatchObject({ to: 'QUEUED', version: 2 });
    expect(results.slice(1).every((r) => r.__typename === 'TransitionAccepted' && !r.change)).toBe(
      true,
    );
    expect(await history(run.id)).toHaveLength(2);
  });

  it('a malformed entry refuses the whole batch, naming it', async () => {
    const run = await createRun(server, { project: uniqueProject() });
    const error = await refusal(
      TRANSITIONS,
      {
        inputs: [
          { id: run.id, to: 'QUEUED' },
          { id: 'not-a-uuid', to: 'RUNNING' },
        ],
      },
      'transitionRuns',
    );
    expectBadInput(error, 'inputs[1].id');
    expect(await history(run.id)).toHaveLength(1);
  });
});

describe('reportProgress', () => {
  it('sets progress and phase, keeps the phase when omitted, bumps updatedAt', async () => {
    const run = await createRun(server, { project: uniqueProject() });
    await sleep(5); // distinct milliseconds, so a bump is visible
    const first = dataOf(
      await server.gql<{ reportProgress: RunData }>(PROGRESS, {
        input: { id: run.id, progress: 0.25, phase: 'download' },
      }),
    ).reportProgress;
    expect(first).toEqual({
      ...run,
      progress: 0.25,
      phase: 'download',
      updatedAt: expect.any(String),
    });
    expect(Date.parse(first['updatedAt'] as string)).toBeGreaterThan(
      Date.parse(run['createdAt'] as string),
    );

    await sleep(5);
    const second = dataOf(
      await server.gql<{ reportProgress: RunData }>(PROGRESS, {
        input: { id: run.id, progress: 0.75 },
      }),
    ).reportProgress;
    expect(second).toMatchObject({ progress: 0.75, phase: 'download', version: 1 });
    expect(Date.parse(second['updatedAt'] as string)).toBeGreaterThan(
      Date.parse(first['updatedAt'] as string),
    );
    expect(await mustReadRun(run.id)).toEqual(second);

    // The bounds are inclusive.
    for (const progress of [0, 1]) {
      const at = dataOf(
        await server.gql<{ reportProgress: RunData }>(PROGRESS, {
          input: { id: run.id, progress },
        }),
      ).reportProgress;
      expect(at).toMatchObject({ progress, phase: 'download' });
    }
  });

  it('progress outside [0, 1] is BAD_USER_INPUT naming input.progress; nothing changes', async () => {
    const run = await createRun(server, { project: uniqueProject() });
    await server.gql(PROGRESS, { input: { id: run.id, progress: 0.5, phase: 'p' } });
    const before = await mustReadRun(run.id);
    for (const progress of [1.5, -0.01, 1.0000001]) {
      const error = await refusal(PROGRESS, { input: { id: run.id, progress } }, 'reportProgress');
      expectBadInput(error, 'input.progress');
    }
    expect(await mustReadRun(run.id)).toEqual(before);
  });

  it('an unknown run is NOT_FOUND; a malformed id is BAD_USER_INPUT', async () => {
    const missing = await refusal(
      PROGRESS,
      { input: { id: MISSING_ID, progress: 0.5 } },
      'reportProgress',
    );
    expect(missing.extensions).toMatchObject({ code: 'NOT_FOUND' });
    const malformed = await refusal(
      PROGRESS,
      { input: { id: 'x', progress: 0.5 } },
      'reportProgress',
    );
    expectBadInput(malformed, 'input.id');
  });
});

describe('heartbeat', () => {
  it('sets heartbeatAt and nothing else', async () => {
    const run = await createRun(server, { project: uniqueProject() });
    const beat = dataOf(
      await server.gql<{ heartbeat: RunData }>(HEARTBEAT, { id: run.id }),
    ).heartbeat;
    expect(beat).toEqual({ ...run, heartbeatAt: expect.any(String) });
    expect(Date.parse(beat['heartbeatAt'] as string)).toBeGreaterThanOrEqual(
      Date.parse(run['createdAt'] as string),
    );
    expect(await mustReadRun(run.id)).toEqual(beat);

    await sleep(5);
    const again = dataOf(
      await server.gql<{ heartbeat: RunData }>(HEARTBEAT, { id: run.id }),
    ).heartbeat;
    expect(Date.parse(again['heartbeatAt'] as string)).toBeGreaterThan(
      Date.parse(beat['heartbeatAt'] as string),
    );
  });

  it('an unknown run is NOT_FOUND', async () => {
    const error = await refusal(HEARTBEAT, { id: MISSING_ID }, 'heartbeat');
    expect(error.extensions).toMatchObject({ code: 'NOT_FOUND' });
  });

  it("beats racing the run's end: once the end is answered, no beat changes the run, and each says it is done", async () => {
    const run = await createRun(server, { project: uniqueProject() });
    await transitionRun(server, { id: run.id, to: 'RUNNING' });
    const BEAT = `mutation($id: ID!, $attempt: Int) { heartbeat(id: $id, attempt: $attempt) {
      isDone heartbeatAt revision } }`;
    type Beat = { isDone: boolean; heartbeatAt: string | null; revision: number };
    const beat = async (attempt?: number) =>
      dataOf(await server.gql<{ heartbeat: Beat }>(BEAT, { id: run.id, attempt })).heartbeat;

    // Four workers' timers beat back to back, through the end and after it.
    let ended = false;
    const afterEnd: Beat[] = [];
    const beaters = Array.from({ length: 4 }, async (_, i) => {
      let sinceEnd = 0;
      while (sinceEnd < 5) {
        const sentAfterEnd = ended;
        const answer = await beat(i % 2 ? 1 : undefined);
        if (sentAfterEnd) {
          afterEnd.push(answer);
          sinceEnd++;
        }
      }
    });
    await sleep(30);
    const end = await transitionRun(server, { id: run.id, to: 'SUCCEEDED' });
    expect(end.__typename).toBe('TransitionAccepted');
    ended = true;
    const readState = async () =>
      dataOf(
        await server.gql<{ run: Beat }>(
          `query($id: ID!) { run(id: $id) { isDone heartbeatAt revision } }`,
          { id: run.id },
        ),
      ).run;
    const final = await readState();
    const finalRun = await mustReadRun(run.id);
    await Promise.all(beaters);

    expect(final.isDone).toBe(true);
    expect(afterEnd).toHaveLength(20);
    for (const answer of afterEnd) expect(answer).toEqual(final);
    expect(await readState()).toEqual(final);
    expect(await mustReadRun(run.id)).toEqual(finalRun);
    // Fencing still holds on a done run, and so does scope: a token for another project
    // does not learn that the run exists.
    const stale = await refusal(BEAT, { id: run.id, attempt: 7 }, 'heartbeat');
    expect(stale.extensions).toMatchObject({ code: 'STALE_ATTEMPT' });
    const elsewhere = dataOf(
      await server.gql<{ createApiToken: { token: string } }>(
        `mutation($p: String!) { createApiToken(input: { name: $p, role: WRITE, projects: [$p] }) { token } }`,
        { p: uniqueProject('elsewhere') },
      ),
    ).createApiToken;
    for (const attempt of [undefined, 7]) {
      const hidden = await server.gql<{ heartbeat: Beat }>(
        BEAT,
        { id: run.id, attempt },
        { token: elsewhere.token },
      );
      expect(hidden.errors?.[0]?.extensions).toMatchObject({ code: 'NOT_FOUND' });
    }
    expect(await readState()).toEqual(final);
  });
});

describe('recordMeasurements', () => {
  it('idempotencyKey: concurrent and later replays of a batch record it once and answer its count', async () => {
    const run = await createRun(server, { project: uniqueProject() });
    const batch = (value: number) => ({
      runId: run.id,
      idempotencyKey: 'batch-1',
      measurements: [
        { name: 'loss', value, step: 1 },
        { name: 'loss', value: value / 2, step: 2 },
      ],
    });
    // Eight workers retry the same batch at once; the answers all say 2.
    const answers = await Promise.all(
      Array.from({ length: 8 }, () =>
        server.gql<{ recordMeasurements: number }>(RECORD, { input: batch(0.8) }),
      ),
    );
    expect(answers.map((a) => dataOf(a).recordMeasurements)).toEqual(Array(8).fill(2));
    // A later replay with other points is still the first batch's answer, and writes nothing.
    expect(
      dataOf(await server.gql<{ recordMeasurements: number }>(RECORD, { input: batch(9) }))
        .recordMeasurements,
    ).toBe(2);
    expect((await readMeasurements(run.id)).all.map((m) => m.value)).toEqual([0.8, 0.4]);
    // The key is per run, and a new key records again.
    const again = await server.gql<{ recordMeasurements: number }>(RECORD, {
      input: { ...batch(0.2), idempotencyKey: 'batch-2' },
    });
    expect(dataOf(again).recordMeasurements).toBe(2);
    expect((await readMeasurements(run.id)).all).toHaveLength(4);
  });

  it('answers the count; latestMeasurements has the newest point per name by at, then recording order', async () => {
    const run = await createRun(server, { project: uniqueProject() });
    const t0 = Date.parse('2030-01-01T00:00:00.000Z');
    const count = dataOf(
      await server.gql<{ recordMeasurements: number }>(RECORD, {
        input: {
          runId: run.id,
          measurements: [
            { name: 'loss', value: 0.9, step: 1, at: iso(t0, 0) },
            { name: 'loss', value: 0.5, step: 3, at: iso(t0, 2) },
            { name: 'loss', value: 0.7, step: 2, at: iso(t0, 1) },
            { name: 'acc', value: 0.1, at: iso(t0, 1) },
            { name: 'acc', value: 0.2, at: iso(t0, 1) },
          ],
        },
      }),
    ).recordMeasurements;
    expect(count).toBe(5);

    let read = await readMeasurements(run.id);
    expect(read.latest).toEqual([
      { name: 'acc', value: 0.2, step: null, at: iso(t0, 1) },
      { name: 'loss', value: 0.5, step: 3, at: iso(t0, 2) },
    ]);

    // A later batch at the same time wins the tie; an older point does not replace a newer one.
    const more = dataOf(
      await server.gql<{ recordMeasurements: number }>(RECORD, {
        input: {
          runId: run.id,
          measurements: [
            { name: 'acc', value: 0.3, at: iso(t0, 1) },
            { name: 'loss', value: 0.1, step: 9, at: iso(t0, -60) },
          ],
        },
      }),
    ).recordMeasurements;
    expect(more).toBe(2);
    read = await readMeasurements(run.id);
    expect(read.latest).toEqual([
      { name: 'acc', value: 0.3, step: null, at: iso(t0, 1) },
      { name: 'loss', value: 0.5, step: 3, at: iso(t0, 2) },
    ]);
    expect(read.all).toEqual([
      { name: 'loss', value: 0.1, step: 9, at: iso(t0, -60) },
      { name: 'loss', value: 0.9, step: 1, at: iso(t0, 0) },
      { name: 'loss', value: 0.7, step: 2, at: iso(t0, 1) },
      { name: 'acc', value: 0.1, step: null, at: iso(t0, 1) },
      { name: 'acc', value: 0.2, step: null, at: iso(t0, 1) },
      { name: 'acc', value: 0.3, step: null, at: iso(t0, 1) },
      { name: 'loss', value: 0.5, step: 3, at: iso(t0, 2) },
    ]);
  });

  it('points without `at` are stamped when recorded; the last of a batch is the latest', async () => {
    const run = await createRun(server, { project: uniqueProject() });
    const count = dataOf(
      await server.gql<{ recordMeasurements: number }>(RECORD, {
        input: {
          runId: run.id,
          measurements: [
            { name: 'gpu', value: 10 },
            { name: 'gpu', value: 30 },
            { name: 'gpu', value: 20 },
          ],
        },
      }),
    ).recordMeasurements;
    expect(count).toBe(3);
    const read = await readMeasurements(run.id);
    expect(read.all.map((m) => m.value)).toEqual([10, 30, 20]);
    for (const m of read.all) {
      expect(Date.parse(m.at)).toBeGreaterThanOrEqual(Date.parse(run['createdAt'] as string));
    }
    expect(read.latest).toEqual([{ name: 'gpu', value: 20, step: null, at: read.all[2]!.at }]);
  });

  it('an empty list or more than 10000 points is BAD_USER_INPUT, and nothing is written', async () => {
    const run = await createRun(server, { project: uniqueProject() });
    const empty = await refusal(
      RECORD,
      { input: { runId: run.id, measurements: [] } },
      'recordMeasurements',
    );
    expectBadInput(empty, 'input.measurements');

    const tooMany = Array.from({ length: 10_001 }, (_, i) => ({ name: 'x', value: i }));
    const over = await refusal(
      RECORD,
      { input: { runId: run.id, measurements: tooMany } },
      'recordMeasurements',
    );
    expectBadInput(over, 'input.measurements');

    const badName = await refusal(
      RECORD,
      {
        input: {
          runId: run.id,
          measurements: [
            { name: 'ok', value: 1 },
            { name: '', value: 2 },
          ],
        },
      },
      'recordMeasurements',
    );
    expectBadInput(badName, 'input.measurements[1].name');

    expect(await readMeasurements(run.id)).toEqual({ all: [], latest: [] });
  });

  it('exactly 10000 points are accepted', async () => {
    const run = await createRun(server, { project: uniqueProject() });
    const points = Array.from({ length: 10_000 }, (_, i) => ({ name: 'x', value: i, step: i }));
    const count = dataOf(
      await server.gql<{ recordMeasurements: number }>(RECORD, {
        input: { runId: run.id, measurements: points },
      }),
    ).recordMeasurements;
    expect(count).toBe(10_000);
    const read = await readMeasurements(run.id);
    expect(read.latest).toEqual([{ name: 'x', value: 9999, step: 9999, at: expect.any(String) }]);
  });

  it('an unknown run is NOT_FOUND and no run appears', async () => {
    const error = await refusal(
      RECORD,
      { input: { runId: MISSING_ID, measurements: [{ name: 'loss', value: 1 }] } },
      'recordMeasurements',
    );
    expect(error.extensions).toMatchObject({ code: 'NOT_FOUND' });
    expect(await readRun(MISSING_ID)).toBeNull();
  });
});

describe('lifecycle', () => {
  it('serves the 21 statuses of lifecycle.json, in order', async () => {
    const response = await server.gql<{ lifecycle: { statuses: StatusInfoData[] } }>(
      `{ lifecycle { statuses { status category color isFinal allowedNext } } }`,
    );
    const statuses = dataOf(response).lifecycle.statuses;
    expect(statuses).toHaveLength(21);
    expect(statuses).toEqual(LIFECYCLE.statuses);
  });
});
