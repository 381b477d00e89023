import type { Client } from 'graphql-ws';
import postgres from 'postgres';
import { describe, expect, it, inject } from 'vitest';
import {
  createRun,
  dataOf,
  changeIdOf,
  latestCursorOf,
  record,
  transitionRun,
  untilTailPast,
  waitUntil,
  type TransitionResultData,
} from '../support/operations.js';
import {
  authHeader,
  postGraphQL,
  startServer,
  uniqueProject,
  useServers,
  type TestServer,
} from '../support/server.js';

/**
 * api.md, Subscriptions: a client that keeps the last cursor it saw and resubscribes with `after`
 * gets every matching change committed since, exactly once, in order, on any instance.
 * Two service instances share the test database here.
 */

const [a, b] = useServers(2) as [TestServer, TestServer];

interface Change {
  cursor: string;
  runId: string;
  from: string | null;
  to: string;
  version: number;
}

const CHANGE_FIELDS = 'cursor runId from to version';

interface Filter {
  projects?: string[];
  runIds?: string[];
  statuses?: string[];
}

/** Every change of the log matching `filter` after `after`, through the paginated query. */
async function readLog(
  server: TestServer,
  filter: Filter,
  after: string | null,
): Promise<Change[]> {
  const all: Change[] = [];
  let cursor = after;
  for (;;) {
    const page = dataOf(
      await server.gql<{
        statusChanges: {
          edges: { node: Change }[];
          pageInfo: { hasNextPage: boolean; endCursor: string | null };
        };
      }>(
        `query($filter: StatusChangeFilter, $after: String) {
          statusChanges(filter: $filter, after: $after, first: 500) {
            edges { node { ${CHANGE_FIELDS} } } pageInfo { hasNextPage endCursor } } }`,
        { filter, after: cursor },
      ),
    ).statusChanges;
    all.push(...page.edges.map((e) => e.node));
    if (!page.pageInfo.hasNextPage) return all;
    cursor = page.pageInfo.endCursor;
  }
}

/** Resolves once the subscription is registered on the server (its hub grew). */
async function subscribed(server: TestServer, before: number) {
  await waitUntil(
    'subscription to register',
    () => server.app.services.events.size() > before,
    5000,
  );
}

function subscribe(
  client: Client,
  filter: Filter,
  after: string | null,
  onChange: (c: Change) => void,
) {
  let ended: (reason: unknown) => void = () => {};
  const done = new Promise((resolve) => (ended = resolve));
  const dispose = client.subscribe<{ statusChanged: Change }>(
    {
      query: `subscription($filter: StatusChangeFilter, $after: String) {
        statusChanged(filter: $filter, after: $after) { ${CHANGE_FIELDS} } }`,
      variables: { filter, after },
    },
    {
      next: (result) => {
        if (result.errors) ended({ errors: result.errors });
        else onChange(result.data!.statusChanged);
      },
      error: (error) => ended({ error }),
      complete: () => ended({ complete: true }),
    },
  );
  return { dispose, done };
}

function expectInOrderPerRun(changes: Change[]) {
  const versions = new Map<string, number>();
  for (const change of changes) {
    const previous = versions.get(change.runId) ?? 0;
    expect(change.version, `run ${change.runId}`).toBeGreaterThan(previous);
    versions.set(change.runId, change.version);
  }
}

describe('statusChanged across instances', () => {
  it('a change made through one instance reaches subscribers on both', async () => {
    const run = await createRun(a, { project: uniqueProject() });
    const onA = record<{ statusChanged: Change }>(
      a.wsClient(),
      `subscription($id: ID!) { statusChanged(filter: { runIds: [$id], statuses: [RUNNING, SUCCEEDED] }) { ${CHANGE_FIELDS} } }`,
      { id: run.id },
    );
    const onB = record<{ statusChanged: Change }>(
      b.wsClient(),
      `subscription($id: ID!) { statusChanged(filter: { runIds: [$id], statuses: [RUNNING, SUCCEEDED] }) { ${CHANGE_FIELDS} } }`,
      { id: run.id },
    );
    await waitUntil(
      'both subscribed',
      () => a.app.services.events.size() > 0 && b.app.services.events.size() > 0,
    );

    await transitionRun(a, { id: run.id, to: 'RUNNING' });
    await transitionRun(b, { id: run.id, to: 'SUCCEEDED' });
    const seenOnB = (await onB.waitFor(2)).map((r) => [
      r.statusChanged.to,
      r.statusChanged.version,
    ]);
    expect(seenOnB).toEqual([
      ['RUNNING', 2],
      ['SUCCEEDED', 3],
    ]);
    const seenOnA = (await onA.waitFor(2)).map((r) => [
      r.statusChanged.to,
      r.statusChanged.version,
    ]);
    expect(seenOnA).toEqual([
      ['RUNNING', 2],
      ['SUCCEEDED', 3],
    ]);
    onA.dispose();
    onB.dispose();
  });

  it('soak: writers on both instances, subscribers dropping and resuming at random, each ends with exactly its changes once, in order', async () => {
    const project = uniqueProject('soak');
    const marker = await createRun(a, { project, name: 'marker' });
    const start = await latestCursorOf(a, marker.id);
    const runs = await Promise.all(
      Array.from({ length: 16 }, (_, i) => createRun(i % 2 ? a : b, { project, name: `run-${i}` })),
    );
    for (const run of runs) await transitionRun(a, { id: run.id, to: 'RUNNING' });

    const filters: Filter[] = [
      { projects: [project] },
      { projects: [project] },
      { runIds: runs.slice(0, 4).map((r) => r.id) },
      { projects: [project], statuses: ['PROCESSING'] },
      { runIds: [runs[5]!.id, runs[9]!.id], statuses: ['RUNNING'] },
      { projects: [project] },
    ];
    const received: Change[][] = filters.map(() => []);
    const reconnects = filters.map(() => 0);
    let writing = true;

    // Each subscriber: subscribe on a random instance from its last cursor; drop after a random
    // number of events (or a random time) and do it again, until writing stopped and it caught up.
    const subscribers = filters.map(async (filter, index) => {
      let after = start;
      let target = -1;
      let giveUpAt = Infinity;
      const mine = received[index]!;
      while (writing || (mine.length < target && Date.now() < giveUpAt)) {
        const server = Math.random() < 0.5 ? a : b;
        const client = server.wsClient();
        const dropAfter = 1 + Math.floor(Math.random() * 150);
        let count = 0;
        const subscription = subscribe(client, filter, after, (change) => {
          mine.push(change);
          after = change.cursor;
          count++;
        });
        await Promise.race([
          subscription.done,
          waitUntil(
            'drop point',
            () => count >= dropAfter || (target >= 0 && mine.length >= target),
            60_000,
          ),
          new Promise((resolve) => setTimeout(resolve, 50 + Math.random() * 400)),
        ]);
        subscription.dispose();
        await client.dispose();
        reconnects[index]!++;
        if (!writing && target < 0) {
          target = (await readLog(a, filter, start)).length;
          giveUpAt = Date.now() + 15_000; // then compare what arrived
        }
      }
    });

    // Writers: flip random runs between RUNNING and PROCESSING through either instance.
    let newest = start;
    const writers = Array.from({ length: 6 }, async (_, w) => {
      let accepted = 0;
      for (let i = 0; i < 250; i++) {
        const server = (i + w) % 2 ? a : b;
        const run = runs[Math.floor(Math.random() * runs.length)]!;
        const to = Math.random() < 0.5 ? 'PROCESSING' : 'RUNNING';
        const result = await transitionRun(server, { id: run.id, to });
        if (result.__typename === 'TransitionAccepted' && result.change) {
          accepted++;
          if (changeIdOf(result.change.cursor) > changeIdOf(newest)) newest = result.change.cursor;
        }
      }
      return accepted;
    });
    const acceptedCounts = await Promise.all(writers);
    // Both tails past every change made, so that the log read once writing stopped is all of it.
    await Promise.all([untilTailPast(a, newest), untilTailPast(b, newest)]);
    writing = false;
    await Promise.all(subscribers);

    expect(acceptedCounts.reduce((x, y) => x + y, 0)).toBeGreaterThan(500);
    for (const [index, filter] of filters.entries()) {
      const expected = await readLog(b, filter, start);
      expect(
        received[index]!.map((c) => c.cursor),
        `subscriber ${index}`,
      ).toEqual(expected.map((c) => c.cursor));
      expectInOrderPerRun(received[index]!);
      expect(reconnects[index]).toBeGreaterThan(1);
    }
  }, 120_000);

  it('a subscriber resumes on the other instance after its instance is stopped', async () => {
    const project = uniqueProject();
    const own = await startServer();
    const run = await createRun(own, { project });
    const start = await latestCursorOf(own, run.id);
    const got: Change[] = [];
    const first = subscribe(own.wsClient(), { projects: [project] }, start, (c) => got.push(c));
    for (const to of ['QUEUED', 'SCHEDULED', 'STARTING'])
      await transitionRun(own, { id: run.id, to });
    await waitUntil('first three', () => got.length === 3);
    await own.stop();
    // Told why, with an error it can act on: resume from its cursor elsewhere.
    expect(await first.done).toMatchObject({
      errors: [{ extensions: { code: 'SERVER_STOPPING' } }],
    });

    // Changes made while the subscriber is away, through the surviving instance.
    for (const to of ['RUNNING', 'PROCESSING']) await transitionRun(b, { id: run.id, to });
    const second = subscribe(b.wsClient(), { projects: [project] }, got.at(-1)!.cursor, (c) =>
      got.push(c),
    );
    await transitionRun(b, { id: run.id, to: 'SUCCEEDED' });
    await waitUntil('all six', () => got.length >= 6);
    second.dispose();
    expect(got.map((c) => [c.to, c.version])).toEqual([
      ['QUEUED', 2],
      ['SCHEDULED', 3],
      ['STARTING', 4],
      ['RUNNING', 5],
      ['PROCESSING', 6],
      ['SUCCEEDED', 7],
    ]);
  });

  it('the seam: changes committed while the replay runs arrive exactly once', async () => {
    const project = uniqueProject();
    const runs = await Promise.all(Array.from({ length: 8 }, () => createRun(a, { project })));
    const start = await latestCursorOf(a, runs[0]!.id);
    for (const run of runs) await transitionRun(a, { id: run.id, to: 'RUNNING' });
    // A long backlog to replay (several replay pages), and writers racing the replay.
    let lastMade = start;
    const made = (result: TransitionResultData) => {
      if (result.change) lastMade = result.change.cursor; // one writer at a time: the newest
    };
    for (let i = 0; i < 300; i++) {
      made(
        await transitionRun(b, {
          id: runs[i % runs.length]!.id,
          to: i % 16 < 8 ? 'PROCESSING' : 'RUNNING',
        }),
      );
    }
    const got: Change[] = [];
    let racing = true;
    const racer = (async () => {
      for (let i = 0; racing && i < 400; i++) {
        made(
          await transitionRun(i % 2 ? a : b, {
            id: runs[i % runs.length]!.id,
            to: i % 2 ? 'PROCESSING' : 'RUNNING',
          }),
        );
      }
    })();
    const before = b.app.services.events.size();
    const subscription = subscribe(b.wsClient(), { projects: [project] }, start, (c) =>
      got.push(c),
    );
    await subscribed(b, before);
    await new Promise((resolve) => setTimeout(resolve, 300));
    racing = false;
    await racer;
    await untilTailPast(a, lastMade);
    const expected = await readLog(a, { projects: [project] }, start);
    await waitUntil('everything', () => got.length >= expected.length);
    await new Promise((resolve) => setTimeout(resolve, 100)); // would expose a late duplicate
    subscription.dispose();
    expect(got.map((c) => c.cursor)).toEqual(expected.map((c) => c.cursor));
  });

  it('SSE resumes from a cursor too, on the other instance', async () => {
    const project = uniqueProject();
    const run = await createRun(a, { project });
    const start = await latestCursorOf(a, run.id);
    await transitionRun(a, { id: run.id, to: 'QUEUED' });
    await transitionRun(a, { id: run.id, to: 'RUNNING' });
    const controller = new AbortController();
    const response = await fetch(b.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...authHeader() },
      body: JSON.stringify({
        query: `subscription($after: String, $p: String!) { statusChanged(after: $after, filter: { projects: [$p] }) { to version } }`,
        variables: { after: start, p: project },
      }),
      signal: controller.signal,
    });
    const reader = response.body!.getReader();
    let text = '';
    const events = () =>
      [...text.matchAll(/^data: (.+)$/gm)].map((m) => JSON.parse(m[1]!).data?.statusChanged);
    const readUntil = async (count: number) => {
      while (events().length < count) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended: ${text}`);
        text += new TextDecoder().decode(value);
      }
    };
    await readUntil(2);
    await transitionRun(a, { id: run.id, to: 'SUCCEEDED' });
    await readUntil(3);
    controller.abort();
    expect(events()).toEqual([
      { to: 'QUEUED', version: 2 },
      { to: 'RUNNING', version: 3 },
      { to: 'SUCCEEDED', version: 4 },
    ]);
  });

  it('when its LISTEN connection is killed, an instance reconnects and misses nothing', async () => {
    const run = await createRun(a, { project: uniqueProject() });
    const start = await latestCursorOf(a, run.id);
    const got: Change[] = [];
    const subscription = subscribe(b.wsClient(), { runIds: [run.id] }, start, (c) => got.push(c));
    const admin = postgres(inject('databaseUrl'), { max: 1, onnotice: () => {} });
    try {
      const killed = await admin`
        SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
        WHERE datname = current_database() AND query ILIKE 'listen%'`;
      expect(killed.length).toBeGreaterThan(0);
      await transitionRun(a, { id: run.id, to: 'RUNNING' });
      await transitionRun(a, { id: run.id, to: 'SUCCEEDED' });
      await waitUntil('both changes on the other instance', () => got.length >= 2);
      expect(got.map((c) => c.to)).toEqual(['RUNNING', 'SUCCEEDED']);
      // And the listeners are back: LISTEN sessions exist again.
      const deadline = Date.now() + 10_000;
      for (;;) {
        const [row] = await admin`
          SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE datname = current_database() AND query ILIKE 'listen%'`;
        if (row!.n > 0) break;
        if (Date.now() > deadline) throw new Error('no LISTEN session came back');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } finally {
      subscription.dispose();
      await admin.end();
    }
  });
});

it('the statusChanges query and the subscription give the same cursors', async () => {
  const run = await createRun(a, { project: uniqueProject() });
  const running = await transitionRun(a, { id: run.id, to: 'RUNNING' });
  await untilTailPast(b, running.change!.cursor);
  const viaQuery = await readLog(b, { runIds: [run.id] }, null);
  const got: Change[] = [];
  const subscription = subscribe(a.wsClient(), { runIds: [run.id] }, viaQuery[0]!.cursor, (c) =>
    got.push(c),
  );
  await waitUntil('replay', () => got.length === 1);
  subscription.dispose();
  expect(got).toEqual([viaQuery[1]]);
  const raw = await postGraphQL<{ statusChanges: unknown }>(
    a.url,
    `{ statusChanges(after: "bm90LWEtY3Vyc29y") { edges { cursor } } }`,
  );
  expect(raw.errors?.[0]?.extensions?.['code']).toBe('BAD_USER_INPUT');
});

it('runUpdated and measurementRecorded reach subscribers on the other instance', async () => {
  const run = await createRun(a, { project: uniqueProject() });
  const before = b.app.services.events.size();
  const updates = record<{
    runUpdated: { progress: number | null; phase: string | null; heartbeatAt: string | null };
  }>(
    b.wsClient(),
    `subscription($id: ID!) { runUpdated(id: $id) { progress phase heartbeatAt } }`,
    { id: run.id },
  );
  const points = record<{
    measurementRecorded: { name: string; value: number; step: number | null };
  }>(
    b.wsClient(),
    `subscription($id: ID!) { measurementRecorded(runId: $id, names: ["loss"]) { name value step } }`,
    { id: run.id },
  );
  await waitUntil('both subscribed on b', () => b.app.services.events.size() >= before + 2);

  dataOf(
    await a.gql(
      `mutation($id: ID!) { reportProgress(input: { id: $id, progress: 0.25, phase: "warmup" }) { id } }`,
      {
        id: run.id,
      },
    ),
  );
  // (The run's creation may also arrive as an update first: it reaches B's tail late.)
  await waitUntil('the progress on b', () =>
    updates.values.some((u) => u.runUpdated.progress === 0.25 && u.runUpdated.phase === 'warmup'),
  );
  dataOf(await a.gql(`mutation($id: ID!) { heartbeat(id: $id) { id } }`, { id: run.id }));
  await waitUntil('the heartbeat on b', () =>
    updates.values.some((u) => u.runUpdated.heartbeatAt !== null),
  );
  const beforeMeasurements = updates.values.length;
  dataOf(
    await a.gql(
      `mutation($id: ID!) { recordMeasurements(input: { runId: $id, measurements: [
        { name: "loss", value: 0.5, step: 1 }, { name: "acc", value: 0.7, step: 1 }, { name: "loss", value: 0.4, step: 2 }] }) }`,
      { id: run.id },
    ),
  );
  const got = await points.waitFor(2);
  expect(got.map((p) => p.measurementRecorded)).toEqual([
    { name: 'loss', value: 0.5, step: 1 },
    { name: 'loss', value: 0.4, step: 2 },
  ]);
  await updates.waitFor(beforeMeasurements + 1); // the measurements also update the run
  updates.dispose();
  points.dispose();
});

it('concurrent measurement batches reach the other instance once each', async () => {
  const run = await createRun(a, { project: uniqueProject() });
  const before = b.app.services.events.size();
  const points = record<{ measurementRecorded: { name: string; step: number } }>(
    b.wsClient(),
    `subscription($id: ID!) { measurementRecorded(runId: $id) { name step } }`,
    { id: run.id },
  );
  await waitUntil('subscribed on b', () => b.app.services.events.size() > before);
  await Promise.all(
    ['x', 'y', 'z', 'w'].map((name) =>
      a.gql(
        `mutation($id: ID!, $m: [MeasurementInput!]!) { recordMeasurements(input: { runId: $id, measurements: $m }) }`,
        {
          id: run.id,
          m: Array.from({ length: 3000 }, (_, step) => ({ name, value: step, step })),
        },
      ),
    ),
  );
  await points.waitFor(12_000, 30_000);
  await new Promise((resolve) => setTimeout(resolve, 200)); // a duplicate would arrive by now
  points.dispose();
  const seen = points.values.map(
    (p) => `${p.measurementRecorded.name}:${p.measurementRecorded.step}`,
  );
  expect(seen).toHaveLength(12_000);
  expect(new Set(seen).size).toBe(12_000);
});

describe('runs(…).logCursor', () => {
  it('keeps a page of runs current: subscribed after it, every change made since the page was read arrives, on any instance', async () => {
    const project = uniqueProject('page');
    const first = await createRun(a, { project });
    const queued = await transitionRun(a, { id: first.id, to: 'QUEUED' });
    // The page's cursor is where instance a has read the log to; once past the QUEUED change,
    // the page both shows it and is not followed by it (before that, it may be both).
    await untilTailPast(a, queued.change!.cursor);
    const page = dataOf(
      await a.gql<{
        runs: { logCursor: string; edges: { node: { id: string; status: string } }[] };
      }>(
        `query($p: String!) { runs(filter: { project: $p }) { logCursor edges { node { id status } } } }`,
        { p: project },
      ),
    ).runs;
    expect(page.edges.map((e) => e.node)).toEqual([{ id: first.id, status: 'QUEUED' }]);

    // Changes after the page was read, some before the subscription exists.
    const second = await createRun(b, { project });
    await transitionRun(b, { id: first.id, to: 'RUNNING' });
    const got: Change[] = [];
    const live = subscribe(b.wsClient(), { projects: [project] }, page.logCursor, (c) =>
      got.push(c),
    );
    await transitionRun(a, { id: second.id, to: 'QUEUED' });
    await waitUntil('three changes', () => got.length >= 3);
    live.dispose();
    // Nothing the page already showed is replayed, nothing made since is missed.
    expect(got.map((c) => [c.runId, c.to])).toEqual([
      [second.id, 'CREATED'],
      [first.id, 'RUNNING'],
      [second.id, 'QUEUED'],
    ]);
  });
});
