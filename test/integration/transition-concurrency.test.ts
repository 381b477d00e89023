import { describe, expect, it } from 'vitest';
import {
  isTransitionAllowed,
  RUN_STATUSES,
  type RunStatus,
} from '../../src/lifecycle/lifecycle.js';
import {
  createRun,
  getHistory,
  latestCursorOf,
  record,
  RESULT_FIELDS,
  sleep,
  transitionRun,
  untilTailPast,
  waitUntil,
  type TransitionResultData,
} from '../support/operations.js';
import { postGraphQL, startServer, useServer, uniqueProject } from '../support/server.js';

const server = useServer();

/** Each request is its own HTTP request on its own connection, all in flight at once. */
async function fireConcurrently(
  inputs: Record<string, unknown>[],
): Promise<TransitionResultData[]> {
  return Promise.all(
    inputs.map(async (input) => {
      const response = await postGraphQL<{ transitionRun: TransitionResultData }>(
        server.url,
        `mutation($input: TransitionRunInput!) { transitionRun(input: $input) { ${RESULT_FIELDS} } }`,
        { input },
      );
      if (response.errors) throw new Error(JSON.stringify(response.errors));
      return response.data!.transitionRun;
    }),
  );
}

function expectLegalPath(history: { from: string | null; to: string; version: number }[]) {
  expect(history[0]).toMatchObject({ from: null, to: 'CREATED', version: 1 });
  for (let i = 1; i < history.length; i++) {
    const previous = history[i - 1]!;
    const change = history[i]!;
    expect(change.version).toBe(previous.version + 1);
    expect(change.from).toBe(previous.to);
    expect(isTransitionAllowed(change.from as RunStatus, change.to as RunStatus)).toBe(true);
  }
}

/**
 * Rows written before an accepted request's own: the RESUMING of a SUSPENDED run sent a status
 * RESUMING leads to (policy.ts planChanges), version one below the accepted change.
 */
function impliedRows<T extends { from: string | null; to: string; reason: string | null }>(
  history: T[],
): T[] {
  return history.filter(
    (h) => h.from === 'SUSPENDED' && h.to === 'RESUMING' && h.reason === 'RESUME',
  );
}

describe('transitionRun under concurrency', () => {
  it('50 concurrent conflicting transitions leave a single legal path; version counts the accepted ones', async () => {
    const run = await createRun(server, { project: uniqueProject() });
    const targets: RunStatus[] = RUN_STATUSES.filter((s) => s !== 'CREATED');
    const inputs = Array.from({ length: 50 }, (_, i) => ({
      id: run.id,
      to: targets[i % targets.length]!,
    }));
    const results = await fireConcurrently(inputs);

    const accepted = results.filter((r) => r.__typename === 'TransitionAccepted' && r.change);
    const history = await getHistory(server, run.id);
    expectLegalPath(history);
    // Every accepted change is in the history exactly once, and nothing else is (but the
    // RESUMING an accepted change from SUSPENDED implies, just before it).
    const implied = impliedRows(history).map((h) => h.version);
    const acceptedVersions = accepted.map((r) => r.change!.version);
    for (const version of implied) expect(acceptedVersions).toContain(version + 1);
    expect(history.length - 1).toBe(accepted.length + implied.length);
    expect([...acceptedVersions, ...implied].sort((a, b) => a - b)).toEqual(
      history.slice(1).map((h) => h.version),
    );
    const final = await server.gql<{ run: { version: number; status: string } }>(
      `query($id: ID!) { run(id: $id) { version status } }`,
      { id: run.id },
    );
    expect(final.data!.run.version).toBe(1 + accepted.length + implied.length);
    expect(final.data!.run.status).toBe(history.at(-1)!.to);
    // Every refusal names the run's real state at the time; illegal ones list what was allowed.
    for (const r of results) {
      expect(['TransitionAccepted', 'IllegalTransition']).toContain(r.__typename);
      if (r.__typename === 'IllegalTransition') {
        expect(isTransitionAllowed(r['from'] as RunStatus, r['to'] as RunStatus)).toBe(false);
      }
    }
  });

  it('of 50 concurrent compare-and-sets on the same expectedVersion exactly one wins', async () => {
    const run = await createRun(server, { project: uniqueProject() });
    const inputs = Array.from({ length: 50 }, (_, i) => ({
      id: run.id,
      to: i % 2 === 0 ? 'QUEUED' : 'RUNNING',
      expectedVersion: 1,
    }));
    const results = await fireConcurrently(inputs);
    const winners = results.filter((r) => r.__typename === 'TransitionAccepted');
    expect(winners).toHaveLength(1);
    const winner = winners[0]!;
    for (const r of results) {
      if (r === winner) continue;
      expect(r).toMatchObject({
        __typename: 'TransitionConflict',
        expectedVersion: 1,
        actualVersion: 2,
        actualStatus: winner.run!.status,
      });
    }
    const history = await getHistory(server, run.id);
    expect(history).toHaveLength(2);
    expectLegalPath(history);
  });

  it('50 concurrent requests with one idempotencyKey make one change and all get its answer', async () => {
    const run = await createRun(server, { project: uniqueProject() });
    const results = await fireConcurrently(
      Array.from({ length: 50 }, () => ({ id: run.id, to: 'RUNNING', idempotencyKey: 'start-1' })),
    );
    const changes = new Set(results.map((r) => r.change?.cursor));
    expect(changes.size).toBe(1);
    expect(
      results.every((r) => r.__typename === 'TransitionAccepted' && r.change?.version === 2),
    ).toBe(true);
    expect(await getHistory(server, run.id)).toHaveLength(2);
  });

  it('concurrent createRun with one idempotencyKey creates one run', async () => {
    const project = uniqueProject();
    const runs = await Promise.all(
      Array.from({ length: 20 }, () => createRun(server, { project, idempotencyKey: 'job-42' })),
    );
    expect(new Set(runs.map((r) => r.id)).size).toBe(1);
    const listed = await server.gql<{ runs: { edges: unknown[] } }>(
      `query($p: String!) { runs(filter: { project: $p }) { edges { node { id } } } }`,
      { p: project },
    );
    expect(listed.data!.runs.edges).toHaveLength(1);
    expect(await getHistory(server, runs[0]!.id)).toHaveLength(1);
  });

  it('concurrent transitionRuns batches over overlapping runs neither deadlock nor lose changes', async () => {
    const project = uniqueProject();
    const a = await createRun(server, { project });
    const b = await createRun(server, { project });
    // Opposite orders in the two kinds of batches: a lock-order bug would deadlock here.
    const batches = Array.from({ length: 20 }, (_, i) =>
      i % 2 === 0
        ? [
            { id: a.id, to: 'QUEUED' },
            { id: b.id, to: 'QUEUED' },
          ]
        : [
            { id: b.id, to: 'RUNNING' },
            { id: a.id, to: 'RUNNING' },
          ],
    );
    const responses = await Promise.all(
      batches.map((inputs) =>
        server.gql<{ transitionRuns: TransitionResultData[] }>(
          `mutation($inputs: [TransitionRunInput!]!) { transitionRuns(inputs: $inputs) { ${RESULT_FIELDS} } }`,
          { inputs },
        ),
      ),
    );
    for (const r of responses) expect(r.errors).toBeUndefined();
    for (const run of [a, b]) {
      const history = await getHistory(server, run.id);
      expectLegalPath(history);
      const accepted = responses
        .flatMap((r) => r.data!.transitionRuns)
        .filter((r) => r.__typename === 'TransitionAccepted' && r.change && r.run!.id === run.id);
      expect(history.length - 1).toBe(accepted.length);
    }
  });
});

it('transitionRun answers RunNotFound for an unknown run', async () => {
  const id = '00000000-0000-4000-8000-000000000000';
  expect(await transitionRun(server, { id, to: 'RUNNING' })).toMatchObject({
    __typename: 'RunNotFound',
    runId: id,
  });
});

it('subscribers of two instances get exactly the accepted changes of 50 concurrent clients, none refused', async () => {
  const other = await startServer();
  try {
    const run = await createRun(server, { project: uniqueProject() });
    // Both tails past the creation first, so that no subscriber here receives it late.
    const created = await latestCursorOf(server, run.id);
    await Promise.all([untilTailPast(server, created), untilTailPast(other, created)]);
    const before = [server, other].map((s) => s.app.services.events.size());
    const query = `subscription($id: ID!) { statusChanged(filter: { runIds: [$id] }) { from to version } }`;
    const onThis = record<{ statusChanged: { from: string; to: string; version: number } }>(
      server.wsClient(),
      query,
      { id: run.id },
    );
    const onOther = record<{ statusChanged: { from: string; to: string; version: number } }>(
      other.wsClient(),
      query,
      { id: run.id },
    );
    await waitUntil(
      'both subscribed',
      () =>
        server.app.services.events.size() > before[0]! &&
        other.app.services.events.size() > before[1]!,
    );
    const targets = RUN_STATUSES.filter((s) => s !== 'CREATED');
    // Half the clients on each instance, all at once: most are refused, as illegal or stale.
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        postGraphQL<{ transitionRun: TransitionResultData }>(
          (i % 2 ? other : server).url,
          `mutation($input: TransitionRunInput!) { transitionRun(input: $input) { ${RESULT_FIELDS} } }`,
          { input: { id: run.id, to: targets[(i * 7) % targets.length] } },
        ),
      ),
    );
    const accepted = results.filter((r) => r.data?.transitionRun.change).length;
    const history = (await getHistory(server, run.id)).slice(1);
    expect(history).toHaveLength(accepted + impliedRows(history).length);
    const expected = history.map(({ from, to, version }) => ({ from, to, version }));
    for (const subscriber of [onThis, onOther]) {
      await subscriber.waitFor(history.length);
      await sleep(100); // a refused change would arrive by now
      expect(subscriber.values.map((v) => v.statusChanged)).toEqual(expected);
    }
    onThis.dispose();
    onOther.dispose();
  } finally {
    await other.stop();
  }
});
