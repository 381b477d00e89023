import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withEmptyDatabase } from '../support/empty-database.js';
import { createPostgresDatabase } from '../../src/db/client.js';
import { listPendingMigrations, listShippedMigrations } from '../../src/db/migrations.js';
import { createRun, transitionRun, untilTailPast, waitUntil } from '../support/operations.js';
import { subscribeSse } from '../support/sse.js';
import { authHeader, startServer, uniqueProject, type TestServer } from '../support/server.js';

/** The value of a sample line of Prometheus text (0 when the series is absent). */
function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

describe('operations endpoints', () => {
  let server: TestServer;
  let base: string;
  beforeAll(async () => {
    server = await startServer();
    base = new URL(server.url).origin;
  });
  afterAll(() => server.stop());

  it('/health answers 200 while the process lives; /ready reports each check', async () => {
    const health = await fetch(`${base}/health`);
    expect(health.status).toBe(200);
    const ready = await fetch(`${base}/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({
      status: 'ready',
      checks: { database: 'ok', migrations: 'ok', changeLogTail: 'ok', accepting: 'ok' },
    });
  });

  it('/metrics: Prometheus text with request timings, resolver timings, transitions by outcome, subscriptions and fan-out lag', async () => {
    const before = await (await fetch(`${base}/metrics`)).text();
    const run = await createRun(server, { project: uniqueProject('metrics') });
    const queued = await transitionRun(server, { id: run.id, to: 'QUEUED' });
    expect(queued.__typename).toBe('TransitionAccepted');
    expect((await transitionRun(server, { id: run.id, to: 'CREATED' })).__typename).toBe(
      'IllegalTransition',
    );
    expect(
      (await transitionRun(server, { id: run.id, to: 'SCHEDULED', expectedVersion: 1 })).__typename,
    ).toBe('TransitionConflict');
    const subscribers = server.app.services.events.size();
    const client = server.wsClient();
    client.subscribe(
      { query: `subscription { runUpdated(id: "${run.id}") { status } }` },
      { next: () => {}, error: () => {}, complete: () => {} },
    );
    await waitUntil('subscribed', () => server.app.services.events.size() > subscribers);
    // The fan-out lag is observed as the tail publishes: both changes, once it is past them.
    await untilTailPast(server, queued.change!.cursor);

    const response = await fetch(`${base}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/plain');
    const after = await response.text();
    const delta = (series: string) => sample(after, series) - sample(before, series);
    expect(delta('runstate_transitions_total{result="accepted",reason=""}')).toBeGreaterThanOrEqual(
      1,
    );
    expect(
      delta('runstate_transitions_total{result="refused",reason="illegal_transition"}'),
    ).toBeGreaterThanOrEqual(1);
    expect(
      delta('runstate_transitions_total{result="refused",reason="conflict"}'),
    ).toBeGreaterThanOrEqual(1);
    expect(
      delta('runstate_resolver_duration_seconds_count{type="Mutation",field="transitionRun"}'),
    ).toBeGreaterThanOrEqual(3);
    expect(
      delta(
        'runstate_http_request_duration_seconds_count{route="graphql",method="POST",status="200"}',
      ),
    ).toBeGreaterThanOrEqual(4);
    expect(sample(after, 'runstate_active_subscriptions')).toBeGreaterThanOrEqual(1);
    expect(sample(after, 'runstate_websocket_connections')).toBeGreaterThanOrEqual(1);
    expect(delta('runstate_fanout_lag_seconds_count')).toBeGreaterThanOrEqual(2);
    expect(after).toContain('process_cpu_seconds_total');
    await client.dispose();
  });

  it('every response carries X-Request-Id: the caller’s when sane, else a new UUID', async () => {
    const given = await fetch(`${base}/health`, { headers: { 'x-request-id': 'lb-7f3a.42' } });
    expect(given.headers.get('x-request-id')).toBe('lb-7f3a.42');
    const hostile = await fetch(server.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-request-id': 'x'.repeat(500),
        ...authHeader(),
      },
      body: JSON.stringify({ query: '{ viewer { role } }' }),
    });
    expect(hostile.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('/ready answers 503 and names the check when the change-log tail is not running', async () => {
    const other = await startServer();
    try {
      await other.app.services.tail.stop();
      const ready = await fetch(`${new URL(other.url).origin}/ready`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({
        status: 'not ready',
        checks: { changeLogTail: 'stopped', database: 'ok' },
      });
    } finally {
      await other.stop();
    }
  });

  it('a drain does not wait for open SSE streams, and counts ordinary requests that accept multipart', async () => {
    // With a drain that would outlast the test, stop() returns only if the stream is not
    // counted as a request in flight.
    const other = await startServer({ drainTimeoutMs: 60_000 });
    const run = await createRun(other, { project: uniqueProject('drain') });
    const sse = await subscribeSse(
      other.url,
      `subscription($id: ID!) { runUpdated(id: $id) { status } }`,
      { id: run.id },
    );
    expect(sse.status).toBe(200);
    // As Apollo Client sends every operation: an answer in JSON, counted until it is sent.
    const apollo = await fetch(other.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'multipart/mixed;deferSpec=20220824,application/json',
        ...authHeader(),
      },
      body: JSON.stringify({ query: `{ run(id: "${run.id}") { status } }` }),
    });
    expect(await apollo.json()).toEqual({ data: { run: { status: 'CREATED' } } });
    await other.stop();
    await sse.ended;
    expect(sse.results.at(-1)?.errors?.[0]?.extensions?.code).toBe('SERVER_STOPPING');
  }, 20_000);

  it('lists every shipped migration as pending on an empty database, none on a migrated one', async () => {
    await withEmptyDatabase('empty', async (url) => {
      const empty = createPostgresDatabase({ url, poolSize: 2 });
      try {
        expect(await listPendingMigrations(empty.db)).toEqual(listShippedMigrations());
        expect(await listPendingMigrations(server.database.db)).toEqual([]);
      } finally {
        await empty.close();
      }
    });
  });
});
