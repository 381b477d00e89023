import { describe, expect, it } from 'vitest';
import { createRun, dataOf, getHistory, transitionRun, statusOf } from '../support/operations.js';
import { useServer, uniqueProject } from '../support/server.js';

// Edge cases of orchestration found in review, each pinned by a test.

const server = useServer();

describe('dependencies', () => {
  it('a memoized upstream counts as succeeded for its downstreams', async () => {
    const project = uniqueProject();
    const original = await createRun(server, { project, cacheKey: 'step-1' });
    await transitionRun(server, { id: original.id, to: 'RUNNING' });
    await transitionRun(server, { id: original.id, to: 'SUCCEEDED' });
    const cached = await createRun(server, { project, cacheKey: 'step-1' });
    expect(cached.status).toBe('SKIPPED');
    const next = await createRun(server, { project, dependsOn: [cached.id] });
    expect(next.status).toBe('QUEUED');
  });

  it('a waiting run that was moved on, or stopped and resumed, still fails upstream', async () => {
    const project = uniqueProject();
    const up = await createRun(server, { project });
    const scheduled = await createRun(server, { project, dependsOn: [up.id] });
    const resumed = await createRun(server, { project, dependsOn: [up.id] });
    await transitionRun(server, { id: scheduled.id, to: 'ON_SCHEDULE' });
    await server.gql(`mutation($id: ID!) { stopRun(id: $id) { __typename } }`, { id: resumed.id });
    await server.gql(`mutation($id: ID!) { resumeRun(id: $id) { __typename } }`, {
      id: resumed.id,
    });
    expect(await statusOf(server, resumed.id)).toBe('RESUMING');
    await transitionRun(server, { id: up.id, to: 'RUNNING' });
    await transitionRun(server, { id: up.id, to: 'FAILED' });
    expect([await statusOf(server, scheduled.id), await statusOf(server, resumed.id)]).toEqual([
      'UPSTREAM_FAILED',
      'UPSTREAM_FAILED',
    ]);
  });

  it('a run waiting again after a retry is queued when its upstreams succeed', async () => {
    const project = uniqueProject();
    const up = await createRun(server, { project });
    const down = await createRun(server, { project, dependsOn: [up.id], maxRetries: 1 });
    await transitionRun(server, { id: down.id, to: 'FAILED', reason: 'QUEUE_TIMEOUT' }); // -> RETRYING
    expect(await statusOf(server, down.id)).toBe('RETRYING');
    await transitionRun(server, { id: up.id, to: 'RUNNING' });
    await transitionRun(server, { id: up.id, to: 'SUCCEEDED' });
    expect(await statusOf(server, down.id)).toBe('QUEUED');
  });

  it('createRun over a transitive edge never fails against a finishing upstream (deadlocks are retried)', async () => {
    const project = uniqueProject();
    let errors = 0;
    let created = 0;
    const until = Date.now() + 2500;
    // prep -> train, and each new evaluate depends on both (ids in both orders across rounds).
    const creators = Array.from({ length: 3 }, async () => {
      while (Date.now() < until) {
        const prep = await createRun(server, { project });
        const train = await createRun(server, { project, dependsOn: [prep.id] });
        await transitionRun(server, { id: prep.id, to: 'RUNNING' });
        const [evaluate] = await Promise.all([
          server.gql<{ createRun: { id: string } }>(
            `mutation($deps: [ID!]) { createRun(input: { project: "${project}", dependsOn: $deps }) { id } }`,
            { deps: [prep.id, train.id] },
          ),
          transitionRun(server, { id: prep.id, to: 'SUCCEEDED' }),
        ]);
        if (evaluate.errors) errors++;
        else created++;
      }
    });
    await Promise.all(creators);
    expect(errors).toBe(0);
    expect(created).toBeGreaterThan(5);
  }, 30_000);
});

describe('retries and attempts', () => {
  it('a stop that was asked for wins over an automatic retry', async () => {
    const run = await createRun(server, { project: uniqueProject(), maxRetries: 2 });
    await transitionRun(server, { id: run.id, to: 'RUNNING' });
    await server.gql(`mutation($id: ID!) { stopRun(id: $id) { __typename } }`, { id: run.id });
    const failed = await transitionRun(server, { id: run.id, to: 'FAILED', message: 'killed' });
    expect(failed).toMatchObject({
      run: { status: 'FAILED' },
      change: { from: 'STOPPING', to: 'FAILED' },
    });
  });

  it("an idempotency key reused by the next attempt is not answered with the previous attempt's change", async () => {
    const run = await createRun(server, { project: uniqueProject(), maxRetries: 1 });
    const first = await transitionRun(server, {
      id: run.id,
      to: 'RUNNING',
      attempt: 1,
      idempotencyKey: 'start',
    });
    expect(first.change).toMatchObject({ to: 'RUNNING', version: 2 });
    await transitionRun(server, { id: run.id, to: 'FAILED', attempt: 1, idempotencyKey: 'fail' }); // -> RETRYING
    const second = await transitionRun(server, {
      id: run.id,
      to: 'RUNNING',
      attempt: 2,
      idempotencyKey: 'start',
    });
    expect(second).toMatchObject({
      __typename: 'TransitionAccepted',
      change: { from: 'RETRYING', to: 'RUNNING', version: 4 },
    });
    // The old attempt's own request, sent again, is answered as it was the first time (the
    // key's contract; its worker learns from the answer that attempt 2 began), and changes
    // nothing; the same attempt with another key is stale.
    expect(
      await transitionRun(server, { id: run.id, to: 'FAILED', attempt: 1, idempotencyKey: 'fail' }),
    ).toMatchObject({
      __typename: 'TransitionAccepted',
      change: { from: 'RUNNING', to: 'RETRYING', version: 3 },
    });
    expect(
      await transitionRun(server, { id: run.id, to: 'FAILED', attempt: 1, idempotencyKey: 'x' }),
    ).toMatchObject({
      __typename: 'TransitionConflict',
    });
    expect((await getHistory(server, run.id)).map((h) => h.to)).toEqual([
      'CREATED',
      'RUNNING',
      'RETRYING',
      'RUNNING',
    ]);
  });
});

describe('force', () => {
  it('corrects a status the table would refuse, needs a reason, and is recorded as forced', async () => {
    const run = await createRun(server, { project: uniqueProject(), maxRetries: 3 });
    await transitionRun(server, { id: run.id, to: 'RUNNING' });
    await transitionRun(server, { id: run.id, to: 'SUCCEEDED' });
    const refused = await server.gql(
      `mutation($id: ID!) { transitionRun(input: { id: $id, to: RUNNING, force: true }) { __typename } }`,
      { id: run.id },
    );
    expect(refused.errors?.[0]?.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'input.reason',
    });
    const forced = dataOf(
      await server.gql<{
        transitionRun: {
          __typename: string;
          change: { from: string; to: string; forced: boolean; reason: string };
        };
      }>(
        `mutation($id: ID!) { transitionRun(input: { id: $id, to: FAILED, force: true, reason: "wrong result reported" }) {
          __typename ... on TransitionAccepted { change { from to forced reason } } } }`,
        { id: run.id },
      ),
    ).transitionRun;
    // FAILED, not RETRYING: a correction is written as asked.
    expect(forced).toEqual({
      __typename: 'TransitionAccepted',
      change: { from: 'SUCCEEDED', to: 'FAILED', forced: true, reason: 'wrong result reported' },
    });
    expect(await transitionRun(server, { id: run.id, to: 'RUNNING' })).toMatchObject({
      __typename: 'IllegalTransition',
    });
    const log = dataOf(
      await server.gql<{ statusChanges: { edges: { node: { forced: boolean } }[] } }>(
        `query($id: ID!) { statusChanges(filter: { runIds: [$id] }) { edges { node { forced } } } }`,
        { id: run.id },
      ),
    );
    expect(log.statusChanges.edges.map((e) => e.node.forced)).toEqual([false, false, false, true]);
  });
});

describe('heartbeat and progress fencing', () => {
  it("a retried run's previous attempt can neither heartbeat nor report progress for it", async () => {
    const run = await createRun(server, { project: uniqueProject(), maxRetries: 1 });
    await transitionRun(server, { id: run.id, to: 'RUNNING', attempt: 1 });
    await transitionRun(server, { id: run.id, to: 'FAILED', attempt: 1 }); // -> RETRYING, attempt 2
    const zombie = await server.gql(
      `mutation($id: ID!) { heartbeat(id: $id, attempt: 1) { heartbeatAt } }`,
      {
        id: run.id,
      },
    );
    expect(zombie.errors?.[0]?.extensions).toMatchObject({
      code: 'STALE_ATTEMPT',
      actualAttempt: 2,
    });
    const progress = await server.gql(
      `mutation($id: ID!) { reportProgress(input: { id: $id, progress: 0.9, attempt: 1 }) { progress } }`,
      { id: run.id },
    );
    expect(progress.errors?.[0]?.extensions).toMatchObject({ code: 'STALE_ATTEMPT' });
    const read = dataOf(
      await server.gql<{ run: { heartbeatAt: string | null; progress: number | null } }>(
        `query($id: ID!) { run(id: $id) { heartbeatAt progress } }`,
        { id: run.id },
      ),
    );
    expect(read.run).toEqual({ heartbeatAt: null, progress: null });
    const current = dataOf(
      await server.gql<{ heartbeat: { heartbeatAt: string | null } }>(
        `mutation($id: ID!) { heartbeat(id: $id, attempt: 2) { heartbeatAt } }`,
        { id: run.id },
      ),
    );
    expect(current.heartbeat.heartbeatAt).not.toBeNull();
  });
});
