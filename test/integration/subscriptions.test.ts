import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createRun,
  dataOf,
  record,
  transitionRun,
  untilTailPast,
  type Recorder,
  type TransitionResultData,
} from '../support/operations.js';
import { authHeader, uniqueProject, useServer } from '../support/server.js';

// Subscriptions end to end: real graphql-ws sockets and real SSE responses against a real server
// over real PostgreSQL. Every test makes its own runs (its own project) and closes what it opens.

const server = useServer();

// A disposed subscription is freed on the server a moment after the client lets go. Give that
// moment (bounded, never failing here) before the next test counts open subscriptions.
let openAtStart = 0;
beforeEach(() => {
  openAtStart = hubSize();
});
afterEach(async () => {
  const deadline = Date.now() + 300;
  while (hubSize() > openAtStart && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
});

// ---------------------------------------------------------------------------------------------
// Shapes and operations

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
interface ChangeWithRun extends Change {
  run: { status: string; version: number };
}

const CHANGE_FIELDS = 'cursor runId from to version reason message at';

const STATUS_CHANGED = `subscription($filter: StatusChangeFilter, $after: String) {
  statusChanged(filter: $filter, after: $after) { ${CHANGE_FIELDS} } }`;
const STATUS_CHANGED_WITH_RUN = `subscription($filter: StatusChangeFilter, $after: String) {
  statusChanged(filter: $filter, after: $after) { ${CHANGE_FIELDS} run { status version } } }`;

interface UpdatedRun {
  id: string;
  status: string;
  version: number;
  progress: number | null;
  phase: string | null;
  heartbeatAt: string | null;
  updatedAt: string;
  latestMeasurements: Point[];
}
const UPDATED_RUN_FIELDS =
  'id status version progress phase heartbeatAt updatedAt latestMeasurements { name value step at }';
const RUN_UPDATED = `subscription($id: ID!) { runUpdated(id: $id) { ${UPDATED_RUN_FIELDS} } }`;

interface Point {
  name: string;
  value: number;
  step: number | null;
  at: string;
}
const MEASUREMENT_RECORDED = `subscription($runId: ID!, $names: [String!]) {
  measurementRecorded(runId: $runId, names: $names) { name value step at } }`;

interface GqlError {
  message: string;
  extensions?: Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------
// Helpers

const hubSize = () => server.app.services.events.size();

/** Poll (bounded) until the server's open subscription count satisfies `ok`. */
async function untilHubSize(ok: (size: number) => boolean, what: string, timeoutMs = 2000) {
  const deadline = Date.now() + timeoutMs;
  while (!ok(hubSize())) {
    if (Date.now() > deadline) throw new Error(`${what}: open subscriptions stayed ${hubSize()}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * Subscribe over graphql-ws on a new socket and resolve once the server registered the
 * subscription (its event hub grew), so later changes cannot be missed by timing alone.
 */
async function subscribe<T>(query: string, variables: Record<string, unknown>) {
  const before = hubSize();
  const client = server.wsClient();
  const recorder = record<T>(client, query, variables);
  let ended: unknown = null;
  void recorder.ended.then((e) => (ended = e));
  const deadline = Date.now() + 5000;
  while (hubSize() <= before) {
    if (ended || recorder.results.some((r) => r.errors) || Date.now() > deadline) {
      recorder.dispose();
      throw new Error(
        `subscription did not register: ${JSON.stringify({ ended, results: recorder.results })}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return { recorder, client };
}

/** The errors a subscription is refused with (over graphql-ws), however the server sends them. */
async function subscriptionErrors(
  query: string,
  variables: Record<string, unknown>,
): Promise<GqlError[]> {
  const client = server.wsClient();
  const recorder = record(client, query, variables);
  try {
    const ended = (await Promise.race([
      recorder.ended,
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error('subscription was neither refused nor ended')), 5000),
      ),
    ])) as { error?: unknown; complete?: boolean };
    if (ended.error) return ended.error as GqlError[];
    expect(recorder.results).toHaveLength(1);
    expect(recorder.results[0]!.data ?? null).toBeNull();
    return (recorder.results[0]!.errors ?? []) as GqlError[];
  } finally {
    recorder.dispose();
    await client.dispose();
  }
}

async function mutate<T>(query: string, variables: Record<string, unknown>): Promise<T> {
  return dataOf(await server.gql<T>(query, variables));
}

/** The change log as `statusChanges` serves it (oldest first). */
async function statusLog(filter: Record<string, unknown>, after?: string): Promise<Change[]> {
  const data = await mutate<{ statusChanges: { edges: { node: Change }[] } }>(
    `query($filter: StatusChangeFilter, $after: String) {
      statusChanges(filter: $filter, after: $after, first: 500) { edges { node { ${CHANGE_FIELDS} } } } }`,
    { filter, after },
  );
  return data.statusChanges.edges.map((e) => e.node);
}

/**
 * Wait (bounded) until this instance's tail has read the run's change at `version` (and so every
 * change before it). A subscription opened after that cannot receive it live: tests that make
 * data before subscribing settle it first, so that what they receive is only what they do
 * afterwards. (The log query alone is not enough: it may list a change the tail has not read,
 * while a lower id is still uncommitted.)
 */
async function settled(runId: string, version = 1): Promise<void> {
  const deadline = Date.now() + 5000;
  let change: Change | undefined;
  while (!(change = (await statusLog({ runIds: [runId] })).find((c) => c.version >= version))) {
    if (Date.now() > deadline) throw new Error(`change ${runId}@${version} never reached the log`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  await untilTailPast(server, change.cursor);
}

/** createRun, settled in the change log before the test subscribes. */
async function createSettledRun(project: string) {
  const run = await createRun(server, { project });
  await settled(run.id);
  return run;
}

/** A transition that must be accepted with a change; answers that change as the API showed it. */
async function move(
  runId: string,
  to: string,
  extra: Record<string, unknown> = {},
): Promise<Change> {
  const result = await transitionRun(server, { id: runId, to, ...extra });
  if (result.__typename !== 'TransitionAccepted' || !result.change) {
    throw new Error(`transition of ${runId} to ${to} was not applied: ${JSON.stringify(result)}`);
  }
  return result.change as unknown as Change;
}

async function recordPoints(runId: string, measurements: Record<string, unknown>[]) {
  const data = await mutate<{ recordMeasurements: number }>(
    `mutation($input: RecordMeasurementsInput!) { recordMeasurements(input: $input) }`,
    { input: { runId, measurements } },
  );
  expect(data.recordMeasurements).toBe(measurements.length);
}

const statusChangedOf = (r: Recorder<{ statusChanged: Change }>) =>
  r.values.map((v) => v.statusChanged);

// SSE: yoga answers `accept: text/event-stream` on the GraphQL path with `event: next` /
// `event: complete` messages (and `:` keep-alive comments).

interface SseStream<T> {
  readonly status: number;
  readonly messages: { event: string; data: string }[];
  /** The payloads of the `next` messages so far. */
  readonly results: { data?: T; errors?: GqlError[] }[];
  waitFor(count: number, timeoutMs?: number): Promise<{ data?: T; errors?: GqlError[] }[]>;
  /** Resolves once the server ended the stream (or it was closed). */
  ended: Promise<void>;
  close(): Promise<void>;
}

async function sse<T>(
  method: 'GET' | 'POST',
  query: string,
  variables: Record<string, unknown>,
): Promise<SseStream<T>> {
  const controller = new AbortController();
  const init: RequestInit = {
    method,
    headers: { accept: 'text/event-stream', ...authHeader() },
    signal: controller.signal,
  };
  let url = server.url;
  if (method === 'GET') {
    url += `?${new URLSearchParams({ query, variables: JSON.stringify(variables) })}`;
  } else {
    init.headers = { ...init.headers, 'content-type': 'application/json' };
    init.body = JSON.stringify({ query, variables });
  }
  const response = await fetch(url, init);
  expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);

  const messages: { event: string; data: string }[] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  const results = () =>
    messages.filter((m) => m.event === 'next').map((m) => JSON.parse(m.data) as never);
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  const ended = (async () => {
    let buffer = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += value;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let event = 'message';
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) continue;
            const colon = line.indexOf(':');
            const field = colon < 0 ? line : line.slice(0, colon);
            const text = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
            if (field === 'event') event = text;
            else if (field === 'data') data.push(text);
          }
          if (event === 'message' && data.length === 0) continue; // a keep-alive comment
          messages.push({ event, data: data.join('\n') });
          const count = results().length;
          for (const w of [...waiters]) if (count >= w.count) w.resolve();
        }
      }
    } catch (error) {
      if (!controller.signal.aborted) throw error;
    }
  })();

  const stream: SseStream<T> = {
    status: response.status,
    messages,
    get results() {
      return results();
    },
    waitFor(count, timeoutMs = 10_000) {
      if (results().length >= count) return Promise.resolve(results());
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () =>
            reject(new Error(`expected ${count} SSE results, got: ${JSON.stringify(messages)}`)),
          timeoutMs,
        );
        waiters.push({
          count,
          resolve: () => {
            clearTimeout(timer);
            resolve(results());
          },
        });
      });
    },
    ended,
    async close() {
      controller.abort();
      await ended.catch(() => {});
    },
  };
  return stream;
}

/** Open an SSE subscription and resolve once the server registered it. */
async function sseSubscribe<T>(
  method: 'GET' | 'POST',
  query: string,
  variables: Record<string, unknown>,
) {
  const before = hubSize();
  const stream = await sse<T>(method, query, variables);
  try {
    expect(stream.status).toBe(200);
    await untilHubSize((n) => n > before, `SSE ${method} subscription registering`);
  } catch (error) {
    await stream.close();
    throw new Error(`${String(error)}; stream: ${JSON.stringify(stream.messages)}`);
  }
  return stream;
}

// ---------------------------------------------------------------------------------------------
// 1. statusChanged: payloads and filters

describe('statusChanged over graphql-ws', () => {
  it('delivers the creation event, then each transition, with every field as committed', async () => {
    const project = uniqueProject('sc-fields');
    const { recorder } = await subscribe<{ statusChanged: ChangeWithRun }>(
      STATUS_CHANGED_WITH_RUN,
      { filter: { projects: [project] } },
    );
    try {
      const run = await createRun(server, { project, name: 'fields' });
      const [created] = await recorder.waitFor(1);
      const [logged] = await statusLog({ runIds: [run.id] });
      expect(created!.statusChanged).toEqual({
        ...logged,
        runId: run.id,
        from: null,
        to: 'CREATED',
        version: 1,
        message: null,
        at: run['createdAt'],
        run: { status: 'CREATED', version: 1 },
      });

      // Each event is awaited before the next change, so its nested run is the run as of then.
      const steps: [string, Record<string, unknown>][] = [
        ['QUEUED', { reason: 'SCHEDULER', message: 'waiting for a GPU' }],
        ['RUNNING', {}],
        ['SUCCEEDED', { reason: 'EXIT_0', message: 'all good' }],
      ];
      const changes: Change[] = [];
      for (const [i, [to, extra]] of steps.entries()) {
        const change = await move(run.id, to, extra);
        changes.push(change);
        const received = await recorder.waitFor(i + 2);
        expect(received[i + 1]!.statusChanged).toEqual({
          ...change,
          run: { status: to, version: i + 2 },
        });
      }
      expect(
        changes.map(({ from, to, version, reason, message, runId }) => ({
          from,
          to,
          version,
          reason,
          message,
          runId,
        })),
      ).toEqual([
        {
          from: 'CREATED',
          to: 'QUEUED',
          version: 2,
          reason: 'SCHEDULER',
          message: 'waiting for a GPU',
          runId: run.id,
        },
        { from: 'QUEUED', to: 'RUNNING', version: 3, reason: null, message: null, runId: run.id },
        {
          from: 'RUNNING',
          to: 'SUCCEEDED',
          version: 4,
          reason: 'EXIT_0',
          message: 'all good',
          runId: run.id,
        },
      ]);
      // What was streamed is exactly the committed log, in order.
      expect(recorder.values.map(({ statusChanged: { run: _run, ...c } }) => c)).toEqual(
        await statusLog({ runIds: [run.id] }),
      );
    } finally {
      recorder.dispose();
    }
  });

  it('filter.runIds: changes of other runs are not delivered', async () => {
    const project = uniqueProject('sc-runids');
    const wanted = await createSettledRun(project);
    const other = await createSettledRun(project);
    const { recorder } = await subscribe<{ statusChanged: Change }>(STATUS_CHANGED, {
      filter: { runIds: [wanted.id] },
    });
    try {
      await move(other.id, 'QUEUED');
      const first = await move(wanted.id, 'QUEUED');
      await move(other.id, 'RUNNING');
      const second = await move(wanted.id, 'RUNNING');
      await recorder.waitFor(2);
      expect(statusChangedOf(recorder)).toEqual([first, second]);
    } finally {
      recorder.dispose();
    }
  });

  it('filter.projects: changes in other projects are not delivered', async () => {
    const wantedProject = uniqueProject('sc-proj-in');
    const otherProject = uniqueProject('sc-proj-out');
    const { recorder } = await subscribe<{ statusChanged: Change }>(STATUS_CHANGED, {
      filter: { projects: [wantedProject] },
    });
    try {
      const otherRun = await createRun(server, { project: otherProject });
      const wantedRun = await createRun(server, { project: wantedProject });
      await move(otherRun.id, 'QUEUED');
      const moved = await move(wantedRun.id, 'QUEUED');
      await recorder.waitFor(2);
      const [creation] = await statusLog({ runIds: [wantedRun.id] });
      expect(creation).toMatchObject({ runId: wantedRun.id, from: null, to: 'CREATED' });
      expect(statusChangedOf(recorder)).toEqual([creation, moved]);
    } finally {
      recorder.dispose();
    }
  });

  it('filter.statuses: only changes into those statuses are delivered', async () => {
    const run = await createSettledRun(uniqueProject('sc-status'));
    const { recorder } = await subscribe<{ statusChanged: Change }>(STATUS_CHANGED, {
      filter: { runIds: [run.id], statuses: ['RUNNING'] },
    });
    try {
      await move(run.id, 'QUEUED');
      const first = await move(run.id, 'RUNNING');
      await move(run.id, 'PROCESSING');
      const second = await move(run.id, 'RUNNING');
      await recorder.waitFor(2);
      expect(statusChangedOf(recorder)).toEqual([first, second]);
      expect(statusChangedOf(recorder).map((c) => [c.from, c.to, c.version])).toEqual([
        ['QUEUED', 'RUNNING', 3],
        ['PROCESSING', 'RUNNING', 5],
      ]);
    } finally {
      recorder.dispose();
    }
  });

  it('filter.categories: only changes into statuses of those categories are delivered', async () => {
    const project = uniqueProject('sc-category');
    const a = await createSettledRun(project);
    const b = await createSettledRun(project);
    const { recorder } = await subscribe<{ statusChanged: Change }>(STATUS_CHANGED, {
      // Scoped to this test's project: other test files change runs in the same database.
      filter: { projects: [project], categories: ['DONE'] },
    });
    try {
      await move(a.id, 'RUNNING'); // RUNNING category
      const first = await move(a.id, 'SUCCEEDED'); // DONE
      await move(b.id, 'QUEUED'); // QUEUED category
      const second = await move(b.id, 'STOPPED'); // DONE
      await recorder.waitFor(2);
      expect(statusChangedOf(recorder)).toEqual([first, second]);
      expect(statusChangedOf(recorder).map((c) => c.to)).toEqual(['SUCCEEDED', 'STOPPED']);
    } finally {
      recorder.dispose();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// 2. Only accepted, committed changes are published

describe('refused and no-op transitions publish nothing', () => {
  it('IllegalTransition, TransitionConflict and a no-op reach neither statusChanged nor runUpdated', async () => {
    const run = await createSettledRun(uniqueProject('sc-refused'));
    const { recorder: changes } = await subscribe<{ statusChanged: Change }>(STATUS_CHANGED, {
      filter: { runIds: [run.id] },
    });
    const { recorder: updates } = await subscribe<{ runUpdated: UpdatedRun }>(RUN_UPDATED, {
      id: run.id,
    });
    try {
      const illegal = await transitionRun(server, { id: run.id, to: 'SUCCEEDED' });
      expect(illegal).toMatchObject({
        __typename: 'IllegalTransition',
        from: 'CREATED',
        to: 'SUCCEEDED',
      });
      const staleVersion = await transitionRun(server, {
        id: run.id,
        to: 'QUEUED',
        expectedVersion: 7,
      });
      expect(staleVersion).toMatchObject({ __typename: 'TransitionConflict', actualVersion: 1 });
      const wrongStatus = await transitionRun(server, {
        id: run.id,
        to: 'QUEUED',
        expectedStatus: 'RUNNING',
      });
      expect(wrongStatus).toMatchObject({
        __typename: 'TransitionConflict',
        actualStatus: 'CREATED',
      });
      const noop: TransitionResultData = await transitionRun(server, { id: run.id, to: 'CREATED' });
      expect(noop).toMatchObject({
        __typename: 'TransitionAccepted',
        change: null,
        run: { status: 'CREATED', version: 1 },
      });

      // The first accepted change is the first (and only) event on both subscriptions.
      const accepted = await move(run.id, 'QUEUED', { expectedVersion: 1 });
      await changes.waitFor(1);
      await updates.waitFor(1);
      expect(statusChangedOf(changes)).toEqual([accepted]);
      expect(accepted).toMatchObject({ from: 'CREATED', to: 'QUEUED', version: 2 });
      expect(updates.values.map((u) => [u.runUpdated.status, u.runUpdated.version])).toEqual([
        ['QUEUED', 2],
      ]);
    } finally {
      changes.dispose();
      updates.dispose();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// 3. statusChanged(after:) replay

describe('statusChanged(after:)', () => {
  it('replays every matching change after the cursor, then goes live without a duplicate', async () => {
    const project = uniqueProject('sc-replay');
    const elsewhere = uniqueProject('sc-replay-other');
    const a = await createRun(server, { project });
    const resumeFrom = await move(a.id, 'QUEUED');
    const x = await createRun(server, { project: elsewhere });
    const b = await createRun(server, { project });
    const aRunning = await move(a.id, 'RUNNING');
    await move(x.id, 'QUEUED');
    const bQueued = await move(b.id, 'QUEUED');
    const [bCreated] = await statusLog({ runIds: [b.id] });
    expect(bCreated).toMatchObject({ runId: b.id, from: null, to: 'CREATED', version: 1 });

    const { recorder } = await subscribe<{ statusChanged: Change }>(STATUS_CHANGED, {
      filter: { projects: [project] },
      after: resumeFrom.cursor,
    });
    try {
      await recorder.waitFor(3);
      expect(statusChangedOf(recorder)).toEqual([bCreated, aRunning, bQueued]);

      const aDone = await move(a.id, 'SUCCEEDED');
      await move(x.id, 'RUNNING');
      const bRunning = await move(b.id, 'RUNNING');
      await recorder.waitFor(5);
      expect(statusChangedOf(recorder)).toEqual([bCreated, aRunning, bQueued, aDone, bRunning]);
      // And it is the log itself, from the cursor on.
      expect(statusChangedOf(recorder)).toEqual(
        await statusLog({ projects: [project] }, resumeFrom.cursor),
      );
    } finally {
      recorder.dispose();
    }
  });

  it('changes committed while the subscription starts arrive exactly once, in commit order', async () => {
    const run = await createRun(server, { project: uniqueProject('sc-seam') });
    const resumeFrom = await move(run.id, 'QUEUED');
    const path = ['RUNNING', 'PROCESSING', 'RUNNING', 'PROCESSING', 'RUNNING', 'PROCESSING'];
    // Start the subscription and a chain of changes at the same time: each change lands before,
    // during or after the replay read, and must be delivered once either way.
    const before = hubSize();
    const recorder = record<{ statusChanged: Change }>(server.wsClient(), STATUS_CHANGED, {
      filter: { runIds: [run.id] },
      after: resumeFrom.cursor,
    });
    try {
      const committed: Change[] = [];
      for (const to of path) committed.push(await move(run.id, to));
      await recorder.waitFor(path.length);
      expect(hubSize()).toBeGreaterThan(before);
      expect(statusChangedOf(recorder)).toEqual(committed);
      // One more live change, to show nothing else was queued behind the seam.
      const last = await move(run.id, 'SUCCEEDED');
      await recorder.waitFor(path.length + 1);
      expect(statusChangedOf(recorder)).toEqual([...committed, last]);
    } finally {
      recorder.dispose();
    }
  });

  it('a malformed or foreign `after` cursor is refused with BAD_USER_INPUT', async () => {
    const before = hubSize();
    const garbage = await subscriptionErrors(STATUS_CHANGED, { after: 'not a cursor!' });
    expect(garbage).toHaveLength(1);
    expect(garbage[0]!.extensions?.['code']).toBe('BAD_USER_INPUT');
    expect(garbage[0]!.message).toMatch(/after/);

    // A cursor of another list (a run's history) is not a change-log cursor.
    const run = await createRun(server, { project: uniqueProject('sc-bad-cursor') });
    const history = await mutate<{
      run: { statusHistory: { edges: { cursor: string }[] } };
    }>(`query($id: ID!) { run(id: $id) { statusHistory { edges { cursor } } } }`, {
      id: run.id,
    });
    const foreign = history.run.statusHistory.edges[0]!.cursor;
    const refused = await subscriptionErrors(STATUS_CHANGED, { after: foreign });
    expect(refused).toHaveLength(1);
    expect(refused[0]!.extensions?.['code']).toBe('BAD_USER_INPUT');
    await untilHubSize((n) => n === before, 'refused subscriptions leave nothing open');
  });
});

// ---------------------------------------------------------------------------------------------
// 4. runUpdated

describe('runUpdated', () => {
  it('fires on a status change, reportProgress, heartbeat and recordMeasurements with the new values', async () => {
    const project = uniqueProject('ru');
    const run = await createSettledRun(project);
    const other = await createSettledRun(project);
    const { recorder } = await subscribe<{ runUpdated: UpdatedRun }>(RUN_UPDATED, { id: run.id });
    const readRun = async () =>
      (
        await mutate<{ run: UpdatedRun }>(
          `query($id: ID!) { run(id: $id) { ${UPDATED_RUN_FIELDS} } }`,
          {
            id: run.id,
          },
        )
      ).run;
    try {
      // Status change.
      await move(run.id, 'RUNNING');
      await recorder.waitFor(1);
      const afterTransition = await readRun();
      expect(afterTransition).toMatchObject({ status: 'RUNNING', version: 2, progress: null });
      expect(recorder.values[0]!.runUpdated).toEqual(afterTransition);

      // Progress (another run's progress in between is not delivered here).
      await mutate(
        `mutation { reportProgress(input: { id: "${other.id}", progress: 0.9 }) { id } }`,
        {},
      );
      const progressed = await mutate<{ reportProgress: UpdatedRun }>(
        `mutation($id: ID!) { reportProgress(input: { id: $id, progress: 0.25, phase: "warmup" }) { ${UPDATED_RUN_FIELDS} } }`,
        { id: run.id },
      );
      await recorder.waitFor(2);
      expect(recorder.values[1]!.runUpdated).toEqual(progressed.reportProgress);
      expect(recorder.values[1]!.runUpdated).toMatchObject({
        status: 'RUNNING',
        version: 2,
        progress: 0.25,
        phase: 'warmup',
        heartbeatAt: null,
      });

      // Heartbeat.
      const beat = await mutate<{ heartbeat: UpdatedRun }>(
        `mutation($id: ID!) { heartbeat(id: $id) { ${UPDATED_RUN_FIELDS} } }`,
        { id: run.id },
      );
      await recorder.waitFor(3);
      expect(beat.heartbeat.heartbeatAt).not.toBeNull();
      expect(recorder.values[2]!.runUpdated).toEqual(beat.heartbeat);

      // Measurements.
      const at = '2025-03-04T05:06:07.890Z';
      await recordPoints(run.id, [{ name: 'loss', value: 0.5, step: 1, at }]);
      await recorder.waitFor(4);
      expect(recorder.values[3]!.runUpdated).toEqual({
        ...beat.heartbeat,
        latestMeasurements: [{ name: 'loss', value: 0.5, step: 1, at }],
      });
      expect(recorder.values).toHaveLength(4);
    } finally {
      recorder.dispose();
    }
  });

  it('refuses an unknown run with NOT_FOUND and a malformed id with BAD_USER_INPUT', async () => {
    const before = hubSize();
    const missing = randomUUID();
    const notFound = await subscriptionErrors(RUN_UPDATED, { id: missing });
    expect(notFound).toHaveLength(1);
    expect(notFound[0]!.extensions?.['code']).toBe('NOT_FOUND');
    expect(notFound[0]!.message).toContain(missing);

    const malformed = await subscriptionErrors(RUN_UPDATED, { id: 'not-a-uuid' });
    expect(malformed).toHaveLength(1);
    expect(malformed[0]!.extensions?.['code']).toBe('BAD_USER_INPUT');
    await untilHubSize((n) => n === before, 'refused subscriptions leave nothing open');
  });
});

// ---------------------------------------------------------------------------------------------
// 5. measurementRecorded

describe('measurementRecorded', () => {
  it('delivers each recorded point of the run, and only the named series when names is given', async () => {
    const project = uniqueProject('mr');
    const run = await createRun(server, { project });
    const other = await createRun(server, { project });
    const { recorder: all } = await subscribe<{ measurementRecorded: Point }>(
      MEASUREMENT_RECORDED,
      { runId: run.id },
    );
    const { recorder: lossOnly } = await subscribe<{ measurementRecorded: Point }>(
      MEASUREMENT_RECORDED,
      { runId: run.id, names: ['loss'] },
    );
    try {
      const t1 = '2025-01-02T03:04:05.678Z';
      const t2 = '2025-01-02T03:05:05.000Z';
      const t3 = '2025-01-02T03:06:05.123Z';
      await recordPoints(other.id, [{ name: 'loss', value: 9, step: 1, at: t1 }]);
      await recordPoints(run.id, [
        { name: 'loss', value: 0.9, step: 1, at: t1 },
        { name: 'accuracy', value: 0.2, step: 1, at: t1 },
        { name: 'loss', value: 0.7, step: 2, at: t2 },
      ]);
      await recordPoints(run.id, [
        { name: 'accuracy', value: 0.4, step: 2, at: t2 },
        { name: 'loss', value: 0.5, at: t3 },
      ]);
      await all.waitFor(5);
      await lossOnly.waitFor(3);
      expect(all.values.map((v) => v.measurementRecorded)).toEqual([
        { name: 'loss', value: 0.9, step: 1, at: t1 },
        { name: 'accuracy', value: 0.2, step: 1, at: t1 },
        { name: 'loss', value: 0.7, step: 2, at: t2 },
        { name: 'accuracy', value: 0.4, step: 2, at: t2 },
        { name: 'loss', value: 0.5, step: null, at: t3 },
      ]);
      expect(lossOnly.values.map((v) => v.measurementRecorded)).toEqual([
        { name: 'loss', value: 0.9, step: 1, at: t1 },
        { name: 'loss', value: 0.7, step: 2, at: t2 },
        { name: 'loss', value: 0.5, step: null, at: t3 },
      ]);
    } finally {
      all.dispose();
      lossOnly.dispose();
    }
  });

  it('refuses an unknown run with NOT_FOUND', async () => {
    const errors = await subscriptionErrors(MEASUREMENT_RECORDED, { runId: randomUUID() });
    expect(errors).toHaveLength(1);
    expect(errors[0]!.extensions?.['code']).toBe('NOT_FOUND');
  });
});

// ---------------------------------------------------------------------------------------------
// 6. Concurrent subscribers, concurrent writers

describe('many subscribers under a burst of concurrent transitions', () => {
  it('5 subscribers each get all 30 changes exactly once, per run in version order', async () => {
    const project = uniqueProject('sc-burst');
    const runs = await Promise.all(
      Array.from({ length: 15 }, () => createRun(server, { project })),
    );
    const sentinel = await createSettledRun(project);
    const subscribers: Recorder<{ statusChanged: Change }>[] = [];
    try {
      for (let i = 0; i < 5; i++) {
        const { recorder } = await subscribe<{ statusChanged: Change }>(STATUS_CHANGED, {
          filter: { projects: [project] },
        });
        subscribers.push(recorder);
      }
      // 15 runs moved at once, each through two changes: 30 transitions, all in flight together.
      const chains = await Promise.all(
        runs.map(async (run) => [await move(run.id, 'QUEUED'), await move(run.id, 'RUNNING')]),
      );
      // Published after every burst change was answered: once it arrived, nothing else is due.
      const last = await move(sentinel.id, 'SKIPPED');
      const byCursor = new Map(chains.flat().map((c) => [c.cursor, c]));
      expect(byCursor.size).toBe(30);

      for (const subscriber of subscribers) {
        await subscriber.waitFor(31);
        const received = statusChangedOf(subscriber);
        expect(received).toHaveLength(31);
        expect(received.at(-1)).toEqual(last);
        const burst = received.slice(0, -1);
        // Exactly once each: 30 distinct cursors, each one of a committed change, as committed.
        expect(new Set(burst.map((c) => c.cursor)).size).toBe(30);
        for (const change of burst) expect(change).toEqual(byCursor.get(change.cursor));
        // Per run, in version order.
        for (const run of runs) {
          expect(
            burst.filter((c) => c.runId === run.id).map((c) => [c.from, c.to, c.version]),
          ).toEqual([
            ['CREATED', 'QUEUED', 2],
            ['QUEUED', 'RUNNING', 3],
          ]);
        }
      }
    } finally {
      for (const s of subscribers) s.dispose();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// 7. SSE

describe('statusChanged over SSE', () => {
  it('POST with accept: text/event-stream receives a change made over HTTP', async () => {
    const run = await createSettledRun(uniqueProject('sse'));
    const stream = await sseSubscribe<{ statusChanged: ChangeWithRun }>(
      'POST',
      STATUS_CHANGED_WITH_RUN,
      { filter: { runIds: [run.id] } },
    );
    try {
      const change = await move(run.id, 'RUNNING', { reason: 'SSE', message: 'over HTTP' });
      const [event] = await stream.waitFor(1);
      expect(event).toEqual({
        data: { statusChanged: { ...change, run: { status: 'RUNNING', version: 2 } } },
      });
      expect(change).toMatchObject({ from: 'CREATED', to: 'RUNNING', version: 2, reason: 'SSE' });
    } finally {
      await stream.close();
    }
  });

  it('GET with `after` replays the changes since the cursor, then goes live', async () => {
    const project = uniqueProject('sse-replay');
    const run = await createRun(server, { project });
    const resumeFrom = await move(run.id, 'QUEUED');
    const replayed = [await move(run.id, 'RUNNING'), await move(run.id, 'PROCESSING')];
    const other = await createRun(server, { project: uniqueProject('sse-replay-other') });
    await move(other.id, 'RUNNING');

    const stream = await sseSubscribe<{ statusChanged: Change }>('GET', STATUS_CHANGED, {
      filter: { projects: [project] },
      after: resumeFrom.cursor,
    });
    try {
      await stream.waitFor(2);
      await move(other.id, 'SUCCEEDED');
      const live = await move(run.id, 'SUCCEEDED');
      const events = await stream.waitFor(3);
      expect(events).toEqual([...replayed, live].map((c) => ({ data: { statusChanged: c } })));
    } finally {
      await stream.close();
    }
  });

  it('an invalid `after` over SSE answers a BAD_USER_INPUT error and completes', async () => {
    const stream = await sse<{ statusChanged: Change }>('POST', STATUS_CHANGED, {
      after: 'garbage!',
    });
    try {
      await stream.ended;
      expect(stream.results).toHaveLength(1);
      expect(stream.results[0]!.errors?.[0]?.extensions?.['code']).toBe('BAD_USER_INPUT');
      expect(stream.messages.at(-1)?.event).toBe('complete');
    } finally {
      await stream.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// 8. Closing

describe('closing subscriptions', () => {
  it('disposing a statusChanged subscription stops delivery and frees it on the server', async () => {
    const run = await createSettledRun(uniqueProject('close-ws'));
    const before = hubSize();
    const { recorder: closed } = await subscribe<{ statusChanged: Change }>(STATUS_CHANGED, {
      filter: { runIds: [run.id] },
    });
    const { recorder: control } = await subscribe<{ statusChanged: Change }>(STATUS_CHANGED, {
      filter: { runIds: [run.id] },
    });
    try {
      expect(hubSize()).toBe(before + 2);
      const first = await move(run.id, 'QUEUED');
      await closed.waitFor(1);
      await control.waitFor(1);
      expect(statusChangedOf(closed)).toEqual([first]);

      closed.dispose();
      // Freed on the server without any further event having to come along.
      await untilHubSize((n) => n === before + 1, 'disposed statusChanged subscription freed');

      const second = await move(run.id, 'RUNNING');
      await control.waitFor(2); // published: the open one has it, the disposed one must not
      expect(statusChangedOf(control)).toEqual([first, second]);
      expect(statusChangedOf(closed)).toEqual([first]);
    } finally {
      closed.dispose();
      control.dispose();
    }
    await untilHubSize((n) => n === before, 'every subscription freed');
  });

  const kinds: [string, (runId: string) => [string, Record<string, unknown>]][] = [
    ['statusChanged(filter: { runIds })', (id) => [STATUS_CHANGED, { filter: { runIds: [id] } }]],
    ['runUpdated', (id) => [RUN_UPDATED, { id }]],
    ['measurementRecorded', (id) => [MEASUREMENT_RECORDED, { runId: id }]],
    ['measurementRecorded(names:)', (id) => [MEASUREMENT_RECORDED, { runId: id, names: ['loss'] }]],
  ];

  for (const [kind, operation] of kinds) {
    it(`disposing an idle ${kind} subscription frees it on the server`, async () => {
      const run = await createSettledRun(uniqueProject('close-kind'));
      const before = hubSize();
      const { recorder } = await subscribe(...operation(run.id));
      try {
        expect(hubSize()).toBe(before + 1);
        recorder.dispose();
        await untilHubSize((n) => n === before, `disposed ${kind} subscription freed`);
      } finally {
        recorder.dispose();
      }
    });
  }

  it('closing the socket frees all of its subscriptions', async () => {
    const run = await createSettledRun(uniqueProject('close-socket'));
    const before = hubSize();
    const client = server.wsClient();
    const recorders = kinds.map(([, operation]) => record(client, ...operation(run.id)));
    try {
      await untilHubSize((n) => n === before + kinds.length, 'subscriptions registered');
      await client.dispose();
      await untilHubSize((n) => n === before, 'subscriptions of a closed socket freed');
    } finally {
      for (const r of recorders) r.dispose();
    }
  });

  it('closing an SSE stream frees its subscription on the server', async () => {
    const run = await createSettledRun(uniqueProject('close-sse'));
    const before = hubSize();
    const stream = await sseSubscribe<{ statusChanged: Change }>('POST', STATUS_CHANGED, {
      filter: { runIds: [run.id] },
    });
    try {
      await stream.close();
      await untilHubSize((n) => n === before, 'closed SSE subscription freed');
    } finally {
      await stream.close();
    }
  });
});
