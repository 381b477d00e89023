import postgres from 'postgres';
import { afterAll, beforeAll, expect, it, inject } from 'vitest';
import { createRun, record, sleep, waitUntil } from '../support/operations.js';
import { startServer, uniqueProject, useServer } from '../support/server.js';

// The change-log tail must never skip a change whose id was taken before a visible one but
// which commits after it (changelog/change-log-tail.ts). Two writers are driven statement by
// statement on their own connections to produce exactly that interleaving.

const server = useServer();
let sql: postgres.Sql;
beforeAll(() => {
  sql = postgres(inject('databaseUrl'), { max: 4, onnotice: () => {} });
});
afterAll(async () => {
  await sql.end();
});

async function appendChange(tx: postgres.ReservedSql, runId: string, project: string, to: string) {
  await tx`
    WITH tx AS (SELECT pg_current_xact_id() AS xid)
    INSERT INTO status_changes (tx_id, run_id, project, from_status, to_status, version, at)
    SELECT tx.xid, ${runId}, ${project}, 'CREATED', ${to}::run_status, 2, now() FROM tx`;
}

/** One writer's whole transaction: the run QUEUED at version 2, and its change-log row. */
async function commitQueued(writer: postgres.ReservedSql, runId: string, project: string) {
  await writer`BEGIN`;
  await writer`UPDATE runs SET status = 'QUEUED', version = 2 WHERE id = ${runId}`;
  await appendChange(writer, runId, project, 'QUEUED');
  await writer`COMMIT`;
}

interface Scenario {
  project: string;
  u: { id: string };
  g: { id: string };
  events: ReturnType<typeof record<{ statusChanged: { runId: string; to: string } }>>;
  writerU: postgres.ReservedSql;
  writerG: postgres.ReservedSql;
}

/** Two runs, a subscriber to their changes, and a connection of its own for each writer. */
async function withTwoWriters(test: (s: Scenario) => Promise<void>): Promise<void> {
  const project = uniqueProject();
  const u = await createRun(server, { project });
  const g = await createRun(server, { project });
  const events = record<{ statusChanged: { runId: string; to: string } }>(
    server.wsClient(),
    `subscription($p: String!) { statusChanged(filter: { projects: [$p], statuses: [QUEUED, RUNNING] }) { runId to } }`,
    { p: project },
  );
  await waitUntil('the subscription', () => server.app.services.events.size() > 0);
  const writerU = await sql.reserve();
  const writerG = await sql.reserve();
  try {
    await test({ project, u, g, events, writerU, writerG });
  } finally {
    await writerU`ROLLBACK`.catch(() => {});
    await writerG`ROLLBACK`.catch(() => {});
    writerU.release();
    writerG.release();
    events.dispose();
  }
}

it('a change that commits after a later one is still delivered', () =>
  withTwoWriters(async ({ project, u, g, events, writerU, writerG }) => {
    // U takes its xid first, then G; G takes its id first, then U; U commits, G does not yet.
    await writerU`BEGIN`;
    await writerU`UPDATE runs SET status = 'QUEUED', version = 2 WHERE id = ${u.id}`;
    await writerG`BEGIN`;
    await writerG`UPDATE runs SET status = 'RUNNING', version = 2 WHERE id = ${g.id}`;
    await appendChange(writerG, g.id, project, 'RUNNING');
    await appendChange(writerU, u.id, project, 'QUEUED');
    await writerU`COMMIT`;
    server.app.services.tail.poke();
    // Let the tail read several times while G is still in flight.
    for (let i = 0; i < 5; i++) {
      await sleep(30);
      server.app.services.tail.poke();
    }
    expect(events.values).toEqual([]); // U's change waits behind G's gap
    await writerG`COMMIT`;
    server.app.services.tail.poke();
    const got = await events.waitFor(2);
    expect(got.map((e) => e.statusChanged)).toEqual([
      { runId: g.id, to: 'RUNNING' },
      { runId: u.id, to: 'QUEUED' },
    ]);
  }));

it('a gap left by a rolled-back writer is passed once it has finished', () =>
  withTwoWriters(async ({ project, u, g, events, writerU, writerG }) => {
    await writerG`BEGIN`;
    await writerG`UPDATE runs SET status = 'RUNNING', version = 2 WHERE id = ${g.id}`;
    await appendChange(writerG, g.id, project, 'RUNNING');
    await commitQueued(writerU, u.id, project);
    server.app.services.tail.poke();
    await sleep(100);
    expect(events.values).toEqual([]);
    await writerG`ROLLBACK`;
    server.app.services.tail.poke();
    const got = await events.waitFor(1);
    expect(got.map((e) => e.statusChanged)).toEqual([{ runId: u.id, to: 'QUEUED' }]);
  }));

/** A connection to another database of the same server (the `postgres` maintenance database). */
function otherDatabase(): postgres.Sql {
  const url = new URL(inject('databaseUrl'));
  url.pathname = '/postgres';
  return postgres(url.toString(), { max: 1, onnotice: () => {} });
}

it('a long transaction in another database does not hold delivery back past a rolled-back id', () =>
  withTwoWriters(async ({ project, u, g, events, writerU, writerG }) => {
    // Before the horizon was limited to writers of status changes, this stalled every instance
    // until the foreign transaction ended (here: the test's whole timeout).
    const other = otherDatabase();
    const foreign = await other.reserve();
    try {
      await foreign`BEGIN`;
      await foreign`SELECT pg_current_xact_id()`; // holds back the cluster-wide xmin
      await writerG`BEGIN`;
      await appendChange(writerG, g.id, project, 'RUNNING');
      await writerG`ROLLBACK`; // what a crashed writer leaves: an id that will never exist
      await writerU`BEGIN`;
      await writerU`UPDATE runs SET status = 'QUEUED', version = 2 WHERE id = ${u.id}`;
      await appendChange(writerU, u.id, project, 'QUEUED');
      await writerU`COMMIT`;
      server.app.services.tail.poke();
      const got = await events.waitFor(1, 3000);
      expect(got.map((e) => e.statusChanged)).toEqual([{ runId: u.id, to: 'QUEUED' }]);
    } finally {
      await foreign`ROLLBACK`.catch(() => {});
      foreign.release();
      await other.end();
    }
  }));

it('a writer that keeps its transaction open is named by /ready until it ends', () =>
  withTwoWriters(async ({ project, u, g, events, writerU, writerG }) => {
    const [row] = await writerG<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`;
    const pid = row!.pid;
    await writerG`BEGIN`;
    await appendChange(writerG, g.id, project, 'RUNNING');
    await commitQueued(writerU, u.id, project);
    server.app.services.tail.poke();
    const readyUrl = new URL('/ready', server.url);
    let ready: { status: string; checks: Record<string, string> } | undefined;
    await waitUntil('/ready to report the wait', async () => {
      const response = await fetch(readyUrl);
      ready = (await response.json()) as typeof ready;
      return response.status === 200 && ready!.status === 'degraded';
    });
    expect(ready!.checks['changeLogTail']).toMatch(
      new RegExp(`^waiting \\d+ ms for pid ${pid}\\b`),
    );
    expect(events.values).toEqual([]);
    await writerG`ROLLBACK`;
    server.app.services.tail.poke();
    const got = await events.waitFor(1);
    expect(got.map((e) => e.statusChanged)).toEqual([{ runId: u.id, to: 'QUEUED' }]);
    await waitUntil('/ready to be ok again', async () => {
      const body = (await (await fetch(readyUrl)).json()) as { status: string };
      return body.status === 'ready';
    });
  }));

it('an instance starts at once while a transaction is held open in another database', async () => {
  // The tail's start used to wait for the cluster-wide xmin: 30 s for a 30 s foreign hold.
  const other = otherDatabase();
  const foreign = await other.reserve();
  try {
    await foreign`BEGIN`;
    await foreign`SELECT pg_current_xact_id()`;
    const started = Date.now();
    const late = await startServer();
    const tookMs = Date.now() - started;
    await late.stop();
    expect(tookMs).toBeLessThan(5000);
  } finally {
    await foreign`ROLLBACK`.catch(() => {});
    foreign.release();
    await other.end();
  }
});
