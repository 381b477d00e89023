import { describe, expect, it } from 'vitest';
import {
  createRun,
  dataOf,
  getHistory,
  record,
  transitionRun,
  waitUntil,
} from '../support/operations.js';
import { useServer, uniqueProject } from '../support/server.js';

// orchestration.md: upstream dependencies, the six trigger policies, cascading failure, and the
// decisions made in the transaction of the change that caused them.

const server = useServer();

interface RunState {
  id: string;
  status: string;
  isReady: boolean;
  blockedReason: string | null;
  trigger: string | null;
  upstreams: { id: string }[];
  downstreams: { id: string }[];
}

async function state(id: string): Promise<RunState> {
  return dataOf(
    await server.gql<{ run: RunState }>(
      `query($id: ID!) { run(id: $id) { id status isReady blockedReason trigger upstreams { id } downstreams { id } } }`,
      { id },
    ),
  ).run;
}

async function statuses(...ids: string[]): Promise<string[]> {
  return Promise.all(ids.map(async (id) => (await state(id)).status));
}

async function finish(id: string, to: string) {
  const path = to === 'SUCCEEDED' || to === 'FAILED' ? ['RUNNING', to] : [to];
  for (const step of path) {
    const result = await transitionRun(server, { id, to: step });
    expect(result.__typename, `${id} -> ${step}`).toBe('TransitionAccepted');
  }
}

describe('waiting and starting', () => {
  it('a run waits for all its upstreams, then is QUEUED in the transaction of the last one', async () => {
    const project = uniqueProject();
    const a = await createRun(server, { project, name: 'a' });
    const b = await createRun(server, { project, name: 'b' });
    const c = await createRun(server, { project, name: 'c', dependsOn: [a.id, b.id] });
    const d = await createRun(server, { project, name: 'd', dependsOn: [c.id] });
    expect(await state(c.id)).toMatchObject({
      status: 'CREATED',
      trigger: 'ALL_SUCCEEDED',
      isReady: false,
      upstreams: expect.arrayContaining([{ id: a.id }, { id: b.id }]),
      downstreams: [{ id: d.id }],
    });

    await finish(a.id, 'SUCCEEDED');
    const waiting = await state(c.id);
    expect(waiting.status).toBe('CREATED');
    expect(waiting.blockedReason).toContain(b.id);
    expect(waiting.blockedReason).not.toContain(a.id);

    await finish(b.id, 'SUCCEEDED');
    // Read right after the mutation answered: the decision committed with it.
    expect(await state(c.id)).toMatchObject({
      status: 'QUEUED',
      isReady: true,
      blockedReason: null,
    });
    expect((await getHistory(server, c.id)).at(-1)).toMatchObject({
      from: 'CREATED',
      to: 'QUEUED',
      reason: 'UPSTREAM_SATISFIED',
    });
    expect(await statuses(d.id)).toEqual(['CREATED']);
    await finish(c.id, 'SUCCEEDED');
    expect(await statuses(d.id)).toEqual(['QUEUED']);
  });

  it('a run created after its upstreams finished is decided at once', async () => {
    const project = uniqueProject();
    const done = await createRun(server, { project });
    await finish(done.id, 'SUCCEEDED');
    const queued = await createRun(server, { project, dependsOn: [done.id] });
    expect(queued.status).toBe('QUEUED');
    const failed = await createRun(server, { project });
    await finish(failed.id, 'FAILED');
    const doomed = await createRun(server, { project, dependsOn: [failed.id] });
    expect(doomed.status).toBe('UPSTREAM_FAILED');
    expect((await getHistory(server, doomed.id)).map((h) => h.to)).toEqual([
      'CREATED',
      'UPSTREAM_FAILED',
    ]);
  });

  it('refuses unknown upstreams and a trigger without upstreams, creating nothing', async () => {
    const project = uniqueProject();
    const missing = await server.gql(
      `mutation($p: String!) { createRun(input: { project: $p, dependsOn: ["00000000-0000-4000-8000-0000000000aa"] }) { id } }`,
      { p: project },
    );
    expect(missing.errors?.[0]?.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'input.dependsOn[0]',
    });
    const lonely = await server.gql(
      `mutation($p: String!) { createRun(input: { project: $p, trigger: ONE_DONE }) { id } }`,
      { p: project },
    );
    expect(lonely.errors?.[0]?.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'input.trigger',
    });
    const listed = await server.gql<{ runs: { edges: unknown[] } }>(
      `query($p: String!) { runs(filter: { project: $p }) { edges { cursor } } }`,
      { p: project },
    );
    expect(listed.data!.runs.edges).toEqual([]);
  });
});

describe('a failure cascades through the whole downstream graph in one transaction', () => {
  it('every level becomes UPSTREAM_FAILED with a reason naming its upstream', async () => {
    const project = uniqueProject();
    const root = await createRun(server, { project, name: 'root' });
    const other = await createRun(server, { project, name: 'other' });
    const l2 = await createRun(server, { project, name: 'l2', dependsOn: [root.id, other.id] });
    const l3 = await createRun(server, { project, name: 'l3', dependsOn: [l2.id] });
    const l4a = await createRun(server, { project, name: 'l4a', dependsOn: [l3.id] });
    const l4b = await createRun(server, { project, name: 'l4b', dependsOn: [l3.id, other.id] });
    const unrelated = await createRun(server, {
      project,
      name: 'unrelated',
      dependsOn: [other.id],
    });

    await finish(root.id, 'FAILED');
    expect(await statuses(l2.id, l3.id, l4a.id, l4b.id, unrelated.id)).toEqual([
      'UPSTREAM_FAILED',
      'UPSTREAM_FAILED',
      'UPSTREAM_FAILED',
      'UPSTREAM_FAILED',
      'CREATED',
    ]);
    const l2State = await state(l2.id);
    expect(l2State.blockedReason).toContain(root.id);
    expect(l2State.blockedReason).toContain('ALL_SUCCEEDED');
    expect((await state(l3.id)).blockedReason).toContain(l2.id);

    // One transaction: the root's failure and every decision it caused share one timestamp.
    const log = await server.gql<{
      statusChanges: {
        edges: { node: { runId: string; to: string; at: string; reason: string | null } }[];
      };
    }>(
      `query($p: String!) { statusChanges(filter: { projects: [$p], statuses: [FAILED, UPSTREAM_FAILED] }) { edges { node { runId to at reason } } } }`,
      { p: project },
    );
    const rows = dataOf(log).statusChanges.edges.map((e) => e.node);
    expect(rows[0]).toMatchObject({ runId: root.id, to: 'FAILED' });
    expect(new Set(rows.map((r) => r.at)).size).toBe(1);
    expect(rows.slice(1).every((r) => r.reason === 'UPSTREAM_FAILED')).toBe(true);
    expect(new Set(rows.map((r) => r.runId))).toEqual(
      new Set([root.id, l2.id, l3.id, l4a.id, l4b.id]),
    );
  });
});

describe('the six trigger policies, each on three levels', () => {
  // Level 1: u1, u2. Level 2: m with the policy over both. Level 3: l waits for m (ALL_SUCCEEDED).
  const cases: { policy: string; outcomes: [string, string | null]; m: string }[] = [
    { policy: 'ALL_SUCCEEDED', outcomes: ['SUCCEEDED', 'SUCCEEDED'], m: 'QUEUED' },
    { policy: 'ALL_SUCCEEDED', outcomes: ['FAILED', null], m: 'UPSTREAM_FAILED' },
    { policy: 'ALL_FAILED', outcomes: ['FAILED', 'FAILED'], m: 'QUEUED' },
    { policy: 'ALL_FAILED', outcomes: ['SUCCEEDED', null], m: 'UPSTREAM_FAILED' },
    { policy: 'ALL_DONE', outcomes: ['SUCCEEDED', 'FAILED'], m: 'QUEUED' },
    { policy: 'ALL_DONE', outcomes: ['STOPPED', null], m: 'CREATED' },
    { policy: 'ONE_SUCCEEDED', outcomes: ['SUCCEEDED', null], m: 'QUEUED' },
    { policy: 'ONE_SUCCEEDED', outcomes: ['FAILED', 'STOPPED'], m: 'UPSTREAM_FAILED' },
    { policy: 'ONE_FAILED', outcomes: ['FAILED', null], m: 'QUEUED' },
    { policy: 'ONE_FAILED', outcomes: ['SUCCEEDED', 'SUCCEEDED'], m: 'UPSTREAM_FAILED' },
    { policy: 'ONE_DONE', outcomes: ['STOPPED', null], m: 'QUEUED' },
    { policy: 'ONE_DONE', outcomes: ['SKIPPED', null], m: 'QUEUED' },
  ];
  for (const { policy, outcomes, m: expected } of cases) {
    it(`${policy}: upstreams ${outcomes.map((o) => o ?? 'still running').join(' + ')} -> ${expected}`, async () => {
      const project = uniqueProject();
      const u1 = await createRun(server, { project });
      const u2 = await createRun(server, { project });
      await transitionRun(server, { id: u2.id, to: 'RUNNING' });
      const m = await createRun(server, { project, dependsOn: [u1.id, u2.id], trigger: policy });
      const l = await createRun(server, { project, dependsOn: [m.id] });
      await finish(u1.id, outcomes[0]);
      if (outcomes[1]) await finish(u2.id, outcomes[1] === 'SKIPPED' ? 'SKIPPED' : outcomes[1]);
      expect(await statuses(m.id)).toEqual([expected]);
      if (expected === 'QUEUED') {
        expect(await statuses(l.id)).toEqual(['CREATED']);
        await finish(m.id, 'SUCCEEDED');
        expect(await statuses(l.id)).toEqual(['QUEUED']);
      } else if (expected === 'UPSTREAM_FAILED') {
        expect(await statuses(l.id)).toEqual(['UPSTREAM_FAILED']);
      } else {
        expect(await statuses(l.id)).toEqual(['CREATED']);
      }
    });
  }
});

describe('skipOnUpstreamSkip', () => {
  it('an upstream skip skips the run instead of failing it, and the skip cascades where asked', async () => {
    const project = uniqueProject();
    const u = await createRun(server, { project });
    const skipper = await createRun(server, {
      project,
      dependsOn: [u.id],
      skipOnUpstreamSkip: true,
    });
    const strict = await createRun(server, { project, dependsOn: [skipper.id] });
    const lenient = await createRun(server, {
      project,
      dependsOn: [skipper.id],
      skipOnUpstreamSkip: true,
    });
    await finish(u.id, 'SKIPPED');
    expect(await statuses(skipper.id, strict.id, lenient.id)).toEqual([
      'SKIPPED',
      'UPSTREAM_FAILED',
      'SKIPPED',
    ]);
    expect((await getHistory(server, skipper.id)).at(-1)).toMatchObject({
      to: 'SKIPPED',
      reason: 'UPSTREAM_SKIPPED',
    });
  });
});

describe('concurrency', () => {
  it('two upstreams finishing at the same moment start their shared downstream exactly once', async () => {
    for (let round = 0; round < 15; round++) {
      const project = uniqueProject();
      const u1 = await createRun(server, { project });
      const u2 = await createRun(server, { project });
      await transitionRun(server, { id: u1.id, to: 'RUNNING' });
      await transitionRun(server, { id: u2.id, to: 'RUNNING' });
      const d = await createRun(server, { project, dependsOn: [u1.id, u2.id] });
      const results = await Promise.all([
        transitionRun(server, { id: u1.id, to: 'SUCCEEDED' }),
        transitionRun(server, { id: u2.id, to: 'SUCCEEDED' }),
      ]);
      expect(results.map((r) => r.__typename)).toEqual([
        'TransitionAccepted',
        'TransitionAccepted',
      ]);
      expect(
        (await getHistory(server, d.id)).map((h) => h.to),
        `round ${round}`,
      ).toEqual(['CREATED', 'QUEUED']);
    }
  });

  it('an upstream finishing while its downstream is being created is never missed', async () => {
    for (let round = 0; round < 15; round++) {
      const project = uniqueProject();
      const u = await createRun(server, { project });
      await transitionRun(server, { id: u.id, to: 'RUNNING' });
      const [d] = await Promise.all([
        createRun(server, { project, dependsOn: [u.id] }),
        transitionRun(server, { id: u.id, to: 'SUCCEEDED' }),
      ]);
      expect(await statuses(d.id), `round ${round}`).toEqual(['QUEUED']);
    }
  });
});

describe('watching a waiting run', () => {
  it('runUpdated tells when what the run waits for changes', async () => {
    const project = uniqueProject();
    const a = await createRun(server, { project, name: 'a' });
    const b = await createRun(server, { project, name: 'b' });
    const c = await createRun(server, { project, dependsOn: [a.id, b.id] });
    const before = server.app.services.events.size();
    const updates = record<{ runUpdated: { status: string; blockedReason: string | null } }>(
      server.wsClient(),
      `subscription($id: ID!) { runUpdated(id: $id) { status blockedReason } }`,
      { id: c.id },
    );
    await waitUntil('subscribed', () => server.app.services.events.size() > before);
    await finish(a.id, 'SUCCEEDED');
    await waitUntil('an update naming only b', () =>
      updates.values.some(
        (u) =>
          u.runUpdated.blockedReason?.includes(b.id) && !u.runUpdated.blockedReason.includes(a.id),
      ),
    );
    await finish(b.id, 'SUCCEEDED');
    await waitUntil('the run queued', () =>
      updates.values.some((u) => u.runUpdated.status === 'QUEUED'),
    );
    updates.dispose();
  });
});
