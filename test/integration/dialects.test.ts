import { describe, expect, it } from 'vitest';
import { getDialect, listDialects } from '../../src/lifecycle/dialects.js';
import { dataOf, latestCursorOf, record } from '../support/operations.js';
import { uniqueProject, useServers, type GqlResponse, type TestServer } from '../support/server.js';

// dialects.md: Polyaxon, Perceval, Parsl and Canary clients speak their own status names, both
// ways, over real HTTP and WebSocket, with two instances over one database.

const [server, other] = useServers(2) as [TestServer, TestServer];

const RESULT = `__typename
  ... on TransitionAccepted { run { status version nativeStatus outcome } change { from to nativeTo } }
  ... on IllegalTransition { from to allowed message }
  ... on TransitionConflict { actualStatus message }
  ... on RunNotFound { message }`;

const TRANSITION = `mutation($input: TransitionRunInput!) { transitionRun(input: $input) { ${RESULT} } }`;

interface Answer {
  __typename: string;
  run?: { status: string; version: number; nativeStatus: string; outcome: string | null };
  change?: { from: string | null; to: string; nativeTo: string } | null;
  [field: string]: unknown;
}

async function createRun(dialect: string, extra: Record<string, unknown> = {}) {
  const response = await server.gql<{ createRun: { id: string; nativeStatus: string } }>(
    `mutation($input: CreateRunInput!) { createRun(input: $input) { id dialect nativeStatus } }`,
    { input: { project: uniqueProject('dialect'), dialect, ...extra } },
  );
  return dataOf(response).createRun;
}

async function send(
  input: Record<string, unknown>,
  via = server,
): Promise<GqlResponse<{ transitionRun: Answer }>> {
  return via.gql<{ transitionRun: Answer }>(TRANSITION, { input });
}

async function sendNative(id: string, native: string, extra: Record<string, unknown> = {}) {
  return dataOf(await send({ id, native, ...extra })).transitionRun;
}

interface RunRead {
  status: string;
  version: number;
  nativeStatus: string;
  statusHistory: { edges: { node: { to: string; nativeTo: string; reason: string | null } }[] };
}

async function readRun(id: string, dialect?: string): Promise<RunRead> {
  const response = await server.gql<{ run: RunRead }>(
    `query($id: ID!, $dialect: Dialect) { run(id: $id) { status version nativeStatus(dialect: $dialect)
      statusHistory(first: 500) { edges { node { to nativeTo(dialect: $dialect) reason } } } } }`,
    { id, dialect },
  );
  return dataOf(response).run;
}

/**
 * One natural sequence of a system: each step is the native name sent and the runstate
 * statuses it must append to the history (none for a no-op; two for an implied RESUMING).
 */
type Step = [native: string, ...recorded: string[]];

const SEQUENCES: Record<string, Step[][]> = {
  PARSL: [
    [['pending'], ['launched', 'SCHEDULED'], ['exec_done', 'SUCCEEDED']],
    [
      ['pending'],
      ['launched', 'SCHEDULED'],
      ['running', 'RUNNING'],
      ['running_ended', 'PROCESSING'],
      ['exec_done', 'SUCCEEDED'],
    ],
    [
      ['launched', 'SCHEDULED'],
      ['fail_retryable', 'RETRYING'],
      ['launched', 'SCHEDULED'],
      ['exec_done', 'SUCCEEDED'],
    ],
    [['pending'], ['dep_fail', 'UPSTREAM_FAILED']],
    [['pending'], ['memo_done', 'SKIPPED']],
    [
      ['launched', 'SCHEDULED'],
      ['joining', 'RUNNING'],
      ['exec_done', 'SUCCEEDED'],
    ],
    [
      ['launched', 'SCHEDULED'],
      ['failed', 'FAILED'],
    ],
  ],
  PERCEVAL: [
    [
      ['WAITING', 'QUEUED'],
      ['RUNNING', 'RUNNING'],
      ['SUCCESS', 'SUCCEEDED'],
    ],
    [
      ['WAITING', 'QUEUED'],
      ['CANCELED', 'STOPPED'],
    ],
    [
      ['RUNNING', 'RUNNING'],
      ['CANCEL_REQUESTED', 'STOPPING'],
      ['CANCELED', 'STOPPED'],
    ],
    [
      ['RUNNING', 'RUNNING'],
      ['SUSPENDED', 'SUSPENDED'],
      ['RUNNING', 'RESUMING', 'RUNNING'],
      ['SUCCESS', 'SUCCEEDED'],
    ],
    [
      ['RUNNING', 'RUNNING'],
      ['UNKNOWN', 'UNKNOWN'],
      ['SUCCESS', 'SUCCEEDED'],
    ],
    [
      ['RUNNING', 'RUNNING'],
      ['ERROR', 'FAILED'],
    ],
  ],
  CANARY: [
    ...[
      'success:SUCCEEDED',
      'diffed:FAILED',
      'failed:FAILED',
      'timeout:FAILED',
      'xfail:SUCCEEDED',
    ].map((end): Step[] => [
      ['created'],
      ['pending', 'ON_SCHEDULE'],
      ['ready', 'QUEUED'],
      ['running', 'RUNNING'],
      end.split(':') as Step,
    ]),
    [
      ['pending', 'ON_SCHEDULE'],
      ['not_run', 'UPSTREAM_FAILED'],
    ],
    [
      ['ready', 'QUEUED'],
      ['skipped', 'SKIPPED'],
    ],
    [
      ['running', 'RUNNING'],
      ['cancelled', 'STOPPED'],
    ],
    [
      ['running', 'RUNNING'],
      ['failed', 'FAILED'],
      ['retry', 'RETRYING'],
      ['ready', 'QUEUED'],
    ],
  ],
  POLYAXON: [
    [
      ['created'],
      ['compiled', 'COMPILED'],
      ['queued', 'QUEUED'],
      ['scheduled', 'SCHEDULED'],
      ['starting', 'STARTING'],
      ['running', 'RUNNING'],
      ['succeeded', 'SUCCEEDED'],
    ],
    [
      ['queued', 'QUEUED'],
      ['unschedulable', 'UNSCHEDULABLE'],
      ['scheduled', 'SCHEDULED'],
    ],
    [
      ['running', 'RUNNING'],
      ['stopping', 'STOPPING'],
      ['stopped', 'STOPPED'],
    ],
    [
      ['running', 'RUNNING'],
      ['failed', 'FAILED'],
      ['retrying', 'RETRYING'],
      ['running', 'RUNNING'],
    ],
    [['created'], ['upstream_failed', 'UPSTREAM_FAILED']],
    [['created'], ['skipped', 'SKIPPED']],
  ],
};

describe.each(Object.keys(SEQUENCES))(
  'natural sequences of %s, through native names alone',
  (dialect) => {
    it.each(
      SEQUENCES[dialect]!.map((steps) => [steps.map((s) => s[0]).join(' -> '), steps] as const),
    )('%s', async (_, steps) => {
      const run = await createRun(dialect);
      const history = ['CREATED'];
      let names = (await readRun(run.id)).statusHistory.edges.map((e) => e.node.nativeTo);
      for (const [native, ...recorded] of steps) {
        const answer = await sendNative(run.id, native);
        expect(answer, `${native}: ${JSON.stringify(answer)}`).toMatchObject({
          __typename: 'TransitionAccepted',
          run: { nativeStatus: native },
        });
        history.push(...recorded);
        const read = await readRun(run.id);
        expect(
          read.statusHistory.edges.map((e) => e.node.to),
          native,
        ).toEqual(history);
        expect(read.nativeStatus, native).toBe(native);
        // Earlier rows read as before; the newest change reads as the name that was sent.
        const nativeTo = read.statusHistory.edges.map((e) => e.node.nativeTo);
        expect(nativeTo.slice(0, names.length), native).toEqual(names);
        if (recorded.length > 0) expect(nativeTo.at(-1), native).toBe(native);
        names = nativeTo;
      }
    });
  },
);

describe('reading runs and changes in any dialect', () => {
  it("a Perceval run's SUSPENDED -> RUNNING records RESUMING, read as WAITING in Perceval's names", async () => {
    const run = await createRun('PERCEVAL');
    for (const native of ['RUNNING', 'SUSPENDED', 'RUNNING']) await sendNative(run.id, native);
    const read = await readRun(run.id);
    expect(read.statusHistory.edges.map((e) => e.node.nativeTo)).toEqual([
      'WAITING',
      'RUNNING',
      'SUSPENDED',
      'WAITING',
      'RUNNING',
    ]);
    // The same history in Polyaxon's names, and in runstate's.
    expect(
      (await readRun(run.id, 'POLYAXON')).statusHistory.edges.map((e) => e.node.nativeTo),
    ).toEqual(['created', 'running', 'warning', 'resuming', 'running']);
    expect((await readRun(run.id, 'RUNSTATE')).nativeStatus).toBe('RUNNING');
  });

  it('a Canary diffed is FAILED with outcome DIFF: diffed in Canary, ERROR in Perceval; retry clears it', async () => {
    const run = await createRun('CANARY');
    await sendNative(run.id, 'running');
    const diffed = await sendNative(run.id, 'diffed');
    expect(diffed).toMatchObject({
      run: { status: 'FAILED', nativeStatus: 'diffed', outcome: 'DIFF' },
      change: { to: 'FAILED', nativeTo: 'diffed' },
    });
    const response = await server.gql<{
      run: {
        outcome: string;
        perceval: string;
        predicates: string[];
        polyaxon: string[];
        statusHistory: { edges: { node: { outcome: string | null; nativeTo: string } }[] };
      };
    }>(
      `query($id: ID!) { run(id: $id) { outcome perceval: nativeStatus(dialect: PERCEVAL)
        predicates polyaxon: predicates(dialect: POLYAXON)
        statusHistory(first: 10) { edges { node { outcome nativeTo(dialect: CANARY) } } } } }`,
      { id: run.id },
    );
    const read = dataOf(response).run;
    expect(read).toMatchObject({ outcome: 'DIFF', perceval: 'ERROR' });
    expect(read.predicates).toEqual(expect.arrayContaining(['is_done', 'is_failure', 'complete']));
    expect(read.predicates).not.toContain('is_success');
    expect(read.polyaxon).toEqual(['is_done', 'is_done_or_stopping', 'failed']);
    expect(read.statusHistory.edges.at(-1)!.node).toEqual({ outcome: 'DIFF', nativeTo: 'diffed' });
    // Retried, the run is no longer diffed: the outcome goes with the failure.
    const retried = await sendNative(run.id, 'retry');
    expect(retried.run).toMatchObject({ status: 'RETRYING', nativeStatus: 'retry', outcome: null });
  });

  it("a native name of another dialect is accepted with `dialect`; the answer is in the run's own", async () => {
    const run = await createRun('PARSL');
    await sendNative(run.id, 'launched');
    const answer = await sendNative(run.id, 'completed', { dialect: 'PERCEVAL' });
    expect(answer).toMatchObject({
      run: { status: 'SUCCEEDED', nativeStatus: 'exec_done' },
      change: { nativeTo: 'exec_done' },
    });
    // `to` still works for a run with a dialect; its answer is in the run's names too.
    const second = await createRun('PARSL');
    const byStatus = dataOf(await send({ id: second.id, to: 'SCHEDULED' })).transitionRun;
    expect(byStatus.run!.nativeStatus).toBe('launched');
  });

  it('memo_done records reason MEMOIZED, and joining is told from running by its reason', async () => {
    const memo = await createRun('PARSL');
    await sendNative(memo.id, 'memo_done');
    const read = await readRun(memo.id);
    expect(read.statusHistory.edges.at(-1)!.node).toMatchObject({
      to: 'SKIPPED',
      reason: 'MEMOIZED',
    });
    const join = await createRun('PARSL');
    await sendNative(join.id, 'launched');
    expect((await sendNative(join.id, 'joining')).run!.nativeStatus).toBe('joining');
    // A name's own reason is part of its meaning: it is recorded whatever reason is sent.
    const own = await createRun('PARSL');
    await sendNative(own.id, 'launched');
    const answer = await sendNative(own.id, 'joining', { reason: 'INNER_APPS' });
    expect(answer.run!.nativeStatus).toBe('joining');
    // Without one, the caller's reason is kept.
    const plain = await createRun('PARSL');
    await sendNative(plain.id, 'running', { reason: 'WORKER_STARTED' });
    const plainRead = await readRun(plain.id);
    expect(plainRead.statusHistory.edges.at(-1)!.node.reason).toBe('WORKER_STARTED');
  });

  it('serves the one table: dialects and dialect(name) equal the lifecycle module', async () => {
    const fields = `dialect statuses { name aliases status outcome reason description }
      predicates { name description statuses }`;
    const response = await server.gql<{ dialects: unknown[]; parsl: unknown }>(
      `{ dialects { ${fields} } parsl: dialect(name: PARSL) { ${fields} } }`,
    );
    const data = dataOf(response);
    expect(data.dialects).toEqual(JSON.parse(JSON.stringify(listDialects())));
    expect(data.parsl).toEqual(JSON.parse(JSON.stringify(getDialect('PARSL'))));
  });
});

describe('filtering by a predicate', () => {
  it('runs(filter: { predicate }) lists the runs whose status is in the set', async () => {
    const project = uniqueProject('predicate');
    const make = async (native: string[]) => {
      const run = dataOf(
        await server.gql<{ createRun: { id: string } }>(
          `mutation($input: CreateRunInput!) { createRun(input: $input) { id } }`,
          { input: { project, dialect: 'PERCEVAL' } },
        ),
      ).createRun;
      for (const name of native) await sendNative(run.id, name);
      return run.id;
    };
    const waiting = await make(['WAITING']);
    const canceling = await make(['RUNNING', 'CANCEL_REQUESTED']);
    const unknown = await make(['RUNNING', 'UNKNOWN']);
    const done = await make(['RUNNING', 'SUCCESS']);
    const list = async (name: string, extra: Record<string, unknown> = {}) => {
      const response = await server.gql<{ runs: { edges: { node: { id: string } }[] } }>(
        `query($filter: RunFilter) { runs(filter: $filter, first: 50) { edges { node { id } } } }`,
        { filter: { project, predicate: { dialect: 'PERCEVAL', name }, ...extra } },
      );
      return dataOf(response)
        .runs.edges.map((e) => e.node.id)
        .sort();
    };
    expect(await list('running')).toEqual([canceling]);
    expect(await list('maybe_completed')).toEqual([unknown, done].sort());
    expect(await list('waiting')).toEqual([waiting]);
    // With other filters: every one must match.
    expect(await list('maybe_completed', { statuses: ['UNKNOWN'] })).toEqual([unknown]);
  });

  it('statusChanged(filter: { predicate }) on one instance streams the matching changes made on another, with nativeTo', async () => {
    const run = await createRun('CANARY');
    const after = await latestCursorOf(server, run.id);
    const done = record<{
      statusChanged: { to: string; nativeTo: string; outcome: string | null };
    }>(
      other.wsClient(),
      `subscription($filter: StatusChangeFilter, $after: String) {
        statusChanged(filter: $filter, after: $after) { to nativeTo outcome } }`,
      { filter: { runIds: [run.id], predicate: { dialect: 'CANARY', name: 'is_done' } }, after },
    );
    try {
      for (const native of ['running', 'timeout', 'retry', 'running', 'xfail'])
        await sendNative(run.id, native);
      const events = await done.waitFor(2);
      expect(events.map((e) => e.statusChanged)).toEqual([
        { to: 'FAILED', nativeTo: 'timeout', outcome: 'TIMEOUT' },
        { to: 'SUCCEEDED', nativeTo: 'xfail', outcome: 'XFAIL' },
      ]);
    } finally {
      done.dispose();
    }
  });
});

describe('bad input: a typed error naming the field, and nothing written', () => {
  async function expectRefused(
    response: GqlResponse<unknown>,
    field: string,
    allowed?: (list: string[]) => void,
  ) {
    expect(response.data ?? null).toBeNull();
    expect(response.errors).toHaveLength(1);
    const error = response.errors![0]!;
    expect(error.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
    expect(JSON.stringify(error)).not.toMatch(/SELECT|INSERT|\bat .*\.ts/);
    if (allowed) allowed(error.extensions!['allowed'] as string[]);
    return error;
  }

  it("an unknown native name lists the dialect names (the run's own, or the named one)", async () => {
    const run = await createRun('PARSL');
    const own = await expectRefused(
      await send({ id: run.id, native: 'SUCCESS' }),
      'input.native',
      (allowed) => expect(allowed).toEqual(getDialect('PARSL').statuses.map((s) => s.name)),
    );
    expect(own.message).toContain('exec_done');
    await expectRefused(
      await send({ id: run.id, native: 'exec_done', dialect: 'CANARY' }),
      'input.native',
      (allowed) => expect(allowed).toContain('diffed'),
    );
    // Case matters: Polyaxon's names are lowercase, its enum's member names are aliases.
    const polyaxon = await createRun('POLYAXON');
    await expectRefused(await send({ id: polyaxon.id, native: 'Running' }), 'input.native');
    expect((await sendNative(polyaxon.id, 'RUNNING')).run!.nativeStatus).toBe('running');
    expect((await readRun(run.id)).version).toBe(1);
  });

  it('both `to` and `native`, neither, or a dialect without a native name', async () => {
    const run = await createRun('PERCEVAL');
    await expectRefused(
      await send({ id: run.id, to: 'RUNNING', native: 'RUNNING' }),
      'input.native',
    );
    await expectRefused(await send({ id: run.id }), 'input.to');
    await expectRefused(
      await send({ id: run.id, to: 'RUNNING', dialect: 'PARSL' }),
      'input.dialect',
    );
    expect((await readRun(run.id)).version).toBe(1);
  });

  it('one unknown name in a batch refuses the whole batch, naming its index', async () => {
    const run = await createRun('PARSL');
    const response = await server.gql(
      `mutation($inputs: [TransitionRunInput!]!) { transitionRuns(inputs: $inputs) { __typename } }`,
      {
        inputs: [
          { id: run.id, native: 'launched' },
          { id: run.id, native: 'exec-done' },
        ],
      },
    );
    await expectRefused(response, 'inputs[1].native');
    expect((await readRun(run.id)).version).toBe(1);
  });

  it("an unknown predicate lists the dialect's predicates", async () => {
    const response = await server.gql(
      `{ runs(filter: { predicate: { dialect: POLYAXON, name: "is_finished" } }) { edges { cursor } } }`,
    );
    await expectRefused(response, 'filter.predicate.name', (allowed) =>
      expect(allowed).toContain('is_k8s_stoppable'),
    );
    const client = server.wsClient();
    const errors = await new Promise<unknown>((resolve) => {
      client.subscribe(
        {
          query: `subscription { statusChanged(filter: { predicate: { dialect: PARSL, name: "done" } }) { to } }`,
        },
        { next: resolve, error: resolve, complete: () => resolve('complete') },
      );
    });
    expect(JSON.stringify(errors)).toContain('BAD_USER_INPUT');
    expect(JSON.stringify(errors)).toContain('filter.predicate.name');
  });
});

describe('concurrency', () => {
  it('two instances reporting a SUSPENDED Perceval job RUNNING at once resume it once', async () => {
    for (let round = 0; round < 5; round++) {
      const run = await createRun('PERCEVAL');
      await sendNative(run.id, 'RUNNING');
      await sendNative(run.id, 'SUSPENDED');
      const answers = await Promise.all(
        [server, other, server, other].map(
          async (via) => dataOf(await send({ id: run.id, native: 'RUNNING' }, via)).transitionRun,
        ),
      );
      expect(answers.every((a) => a.__typename === 'TransitionAccepted')).toBe(true);
      // One wrote RESUMING then RUNNING; the others found it RUNNING (a no-op, nothing written).
      expect(answers.filter((a) => a.change != null)).toHaveLength(1);
      const read = await readRun(run.id);
      expect(read.statusHistory.edges.map((e) => e.node.to)).toEqual([
        'CREATED',
        'RUNNING',
        'SUSPENDED',
        'RESUMING',
        'RUNNING',
      ]);
    }
  });
});
