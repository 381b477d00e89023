import postgres from 'postgres';
import { describe, expect, it } from 'vitest';
import { createPostgresDatabase, type Database } from '../../src/db/client.js';
import { partitionName, weekOf } from '../../src/runs/retention.js';
import { withEmptyDatabase } from '../support/empty-database.js';
import { dataOf, latestCursorOf, record, waitUntil } from '../support/operations.js';
import { startServer, uniqueProject, type TestServer } from '../support/server.js';

// records.md: retention (RETENTION_DAYS, IDEMPOTENCY_TTL_HOURS) by the reaper, in small batches,
// once across instances; measurements dropped a week-partition at a time; CURSOR_EXPIRED for a
// cursor older than what was kept; deleteRun for admins. Each test on a database of its own,
// since retention deletes whatever is old in the database it runs on.

const DAY = 24 * 3600 * 1000;
const daysAgo = (days: number, plusSeconds = 0) =>
  new Date(Date.now() - days * DAY + plusSeconds * 1000).toISOString();

async function withTwoServers(
  retentionDays: number | null,
  fn: (a: TestServer, b: TestServer, sql: postgres.Sql) => Promise<void>,
) {
  await withEmptyDatabase('retention', async (url) => {
    const databases: Database[] = [1, 2].map(() => createPostgresDatabase({ url, poolSize: 5 }));
    await databases[0]!.migrate();
    const sql = postgres(url, { max: 2, onnotice: () => {} });
    const servers: TestServer[] = [];
    try {
      for (const database of databases) {
        servers.push(
          await startServer({
            database,
            reaperIntervalMs: 50,
            retention: { retentionDays, intervalMs: 100, batchSize: 2 },
          }),
        );
      }
      await fn(servers[0]!, servers[1]!, sql);
    } finally {
      await Promise.all(servers.map((s) => s.stop()));
      await Promise.all(databases.map((d) => d.close()));
      await sql.end();
    }
  });
}

type Counts = { status: string; count: number }[];

async function create(via: TestServer, input: Record<string, unknown>): Promise<string> {
  const response = await via.gql<{ createRun: { id: string } }>(
    `mutation($input: CreateRunInput!) { createRun(input: $input) { id } }`,
    { input },
  );
  return dataOf(response).createRun.id;
}

async function move(via: TestServer, id: string, to: string, at?: string) {
  const response = await via.gql<{ transitionRun: { __typename: string } }>(
    `mutation($input: TransitionRunInput!) { transitionRun(input: $input) { __typename } }`,
    { input: { id, to, ...(at ? { at } : {}) } },
  );
  expect(dataOf(response).transitionRun.__typename).toBe('TransitionAccepted');
}

/** A run imported as created and finished `days` ago, with its steps, all done then. */
async function importOld(via: TestServer, project: string, days: number, steps = 0) {
  const id = await create(via, { project, createdAt: daysAgo(days) });
  await move(via, id, 'RUNNING', daysAgo(days, 1));
  const stepIds: string[] = [];
  for (let i = 0; i < steps; i++) {
    const step = await create(via, { project, parentId: id, createdAt: daysAgo(days, 1) });
    await move(via, step, 'RUNNING', daysAgo(days, 2));
    await move(via, step, 'SUCCEEDED', daysAgo(days, 3));
    stepIds.push(step);
  }
  await move(via, id, 'SUCCEEDED', daysAgo(days, 4));
  return { id, stepIds };
}

const exists = async (sql: postgres.Sql, id: string) =>
  (await sql`SELECT 1 FROM runs WHERE id = ${id}`).length === 1;

async function expectExactCounts(via: TestServer, sql: postgres.Sql, project: string) {
  const truth = await sql<{ status: string; n: number }[]>`
    SELECT status::text AS status, count(*)::int AS n FROM runs WHERE project = ${project}
    GROUP BY runs.status ORDER BY runs.status`;
  const answer = dataOf(
    await via.gql<{ runCounts: Counts }>(
      `query($p: String!) { runCounts(filter: { project: $p }) { status count } }`,
      { p: project },
    ),
  ).runCounts;
  expect(answer).toEqual(truth.map((r) => ({ status: r.status, count: r.n })));
}

describe('retention', () => {
  it('deletes runs done longer than RETENTION_DAYS with their steps, history and points, keeps the rest, and counts stay exact', async () => {
    await withTwoServers(30, async (a, b, sql) => {
      const project = uniqueProject('kept');
      const before = await latestCursorOf(a, await create(a, { project }));
      const old = await Promise.all([1, 2, 3, 4, 5].map(() => importOld(a, project, 40, 2)));
      for (const { id } of old) {
        await a.gql(
          `mutation($input: RecordMeasurementsInput!) { recordMeasurements(input: $input) { count } }`,
          { input: { runId: id, measurements: [{ name: 'loss', value: 1 }] } },
        );
      }
      // Their history was written long ago (as the reaper marks the log's head every few
      // minutes): what is imported after this mark is recent in the log, however old its times.
      await sql`INSERT INTO change_log_marks (at, through_id)
        SELECT now() - interval '35 days', max(id) FROM status_changes`;
      // Kept: a recent one, a running one, an old one with a step still going, an old one a
      // waiting run still needs, and one imported just now with old times.
      const recent = await importOld(b, project, 10);
      const running = await create(b, { project });
      await move(b, running, 'RUNNING');
      const withLiveStep = await create(b, { project, createdAt: daysAgo(40) });
      await move(b, withLiveStep, 'RUNNING', daysAgo(40, 1));
      const liveStep = await create(b, { project, parentId: withLiveStep });
      await move(b, liveStep, 'RUNNING');
      const awaited = await importOld(b, project, 40);
      const waiting = await create(b, { project, dependsOn: [awaited.id, running] });
      const importedNow = await importOld(b, project, 40);

      await waitUntil('the old runs to be deleted', async () => {
        const left = await Promise.all(old.map(({ id }) => exists(sql, id)));
        return left.every((x) => !x);
      });
      for (const { stepIds } of old)
        for (const s of stepIds) expect(await exists(sql, s)).toBe(false);
      for (const id of [
        recent.id,
        running,
        withLiveStep,
        liveStep,
        awaited.id,
        waiting,
        importedNow.id,
      ])
        expect(await exists(sql, id), id).toBe(true);
      const [orphans] = await sql<{ changes: number; points: number }[]>`
        SELECT (SELECT count(*) FROM status_changes c WHERE NOT EXISTS
                  (SELECT 1 FROM runs r WHERE r.id = c.run_id))::int AS changes,
               (SELECT count(*) FROM measurements m WHERE NOT EXISTS
                  (SELECT 1 FROM runs r WHERE r.id = m.run_id))::int AS points`;
      expect(orphans).toEqual({ changes: 0, points: 0 });
      // Counts exact on both instances, before and after the log is folded.
      await expectExactCounts(a, sql, project);
      await expectExactCounts(b, sql, project);
      await new Promise((resolve) => setTimeout(resolve, 300));
      await expectExactCounts(b, sql, project);

      // A cursor from before the deleted changes has expired, paged and live; a newer one works.
      const paged = await a.gql(
        `query($after: String) { statusChanges(after: $after, first: 10) { edges { cursor } } }`,
        { after: before },
      );
      expect(paged.errors?.[0]?.extensions?.['code']).toBe('CURSOR_EXPIRED');
      const live = record(
        b.wsClient(),
        `subscription($after: String) { statusChanged(after: $after) { cursor } }`,
        { after: before },
      );
      await live.ended;
      expect(live.results[0]?.errors?.[0]?.extensions?.['code']).toBe('CURSOR_EXPIRED');
      live.dispose();
      const fresh = await latestCursorOf(a, waiting);
      const ok = await a.gql(
        `query($after: String) { statusChanges(after: $after, first: 10) { edges { cursor } } }`,
        { after: fresh },
      );
      expect(ok.errors).toBeUndefined();
    });
  });

  it('drops expired week partitions and older points, makes the coming weeks, expires idempotency keys', async () => {
    await withTwoServers(30, async (a, _b, sql) => {
      const project = uniqueProject('points');
      const run = await create(a, { project });
      // A partition ten weeks back (as if made then), with a point in it, and an old point in
      // the default partition (an import older than every partition).
      const monday = weekOf(new Date(Date.now() - 70 * DAY));
      const expired = partitionName(monday);
      await sql.unsafe(
        `CREATE TABLE "${expired}" PARTITION OF measurements FOR VALUES FROM ('${monday.toISOString()}') ` +
          `TO ('${new Date(monday.getTime() + 7 * DAY).toISOString()}')`,
      );
      await sql`INSERT INTO measurements (run_id, name, value, at) VALUES
        (${run}, 'old', 1, ${new Date(monday.getTime() + DAY).toISOString()}),
        (${run}, 'older', 2, ${daysAgo(400)}),
        (${run}, 'now', 3, now())`;
      await sql`INSERT INTO transition_keys (run_id, key, outcome, created_at)
        VALUES (${run}, 'old-key', '{"kind":"illegal"}', now() - interval '2 days'),
               (${run}, 'new-key', '{"kind":"illegal"}', now())`;
      await waitUntil('the expired partition to be dropped', async () => {
        const [row] = await sql<{ n: number }[]>`
          SELECT count(*)::int AS n FROM pg_class WHERE relname = ${expired}`;
        return row!.n === 0;
      });
      await waitUntil('old points and keys to go', async () => {
        const names = await sql<{ name: string }[]>`
          SELECT name FROM measurements WHERE run_id = ${run} ORDER BY name`;
        const keys = await sql<{ key: string }[]>`
          SELECT key FROM transition_keys WHERE run_id = ${run} ORDER BY key`;
        return (
          JSON.stringify(names.map((n) => n.name)) === '["now"]' &&
          JSON.stringify(keys.map((k) => k.key)) === '["new-key"]'
        );
      });
      // The current week and the next two have partitions, and the current point is in one.
      const weeks = [0, 1, 2].map((w) =>
        partitionName(new Date(weekOf(new Date()).getTime() + w * 7 * DAY)),
      );
      const made = await sql<{ relname: string }[]>`
        SELECT relname FROM pg_class WHERE relname IN ${sql(weeks)} ORDER BY relname`;
      expect(made.map((m) => m.relname)).toEqual(weeks);
      const [where] = await sql<{ part: string }[]>`
        SELECT tableoid::regclass::text AS part FROM measurements WHERE run_id = ${run}`;
      expect(where!.part).toBe(weeks[0]);
    });
  });
});

describe('deleteRun', () => {
  it('deletes a done run with its steps for an admin; refuses one not done or awaited; counts follow', async () => {
    await withTwoServers(null, async (a, b, sql) => {
      const project = uniqueProject('delete');
      const done = await importOld(a, project, 1, 3);
      const running = await create(a, { project });
      await move(a, running, 'RUNNING');
      const awaited = await importOld(a, project, 1);
      await create(a, { project, dependsOn: [awaited.id, running] });
      const del = (id: string, via = a, token?: string) =>
        via.gql<{ deleteRun: boolean }>(
          `mutation($id: ID!) { deleteRun(id: $id) }`,
          { id },
          token ? { token } : undefined,
        );
      const writer = dataOf(
        await a.gql<{ createApiToken: { token: string } }>(
          `mutation($p: String!) { createApiToken(input: { name: $p, role: WRITE, projects: [$p] }) { token } }`,
          { p: project },
        ),
      ).createApiToken.token;
      expect((await del(done.id, a, writer)).errors?.[0]?.extensions?.['code']).toBe('FORBIDDEN');
      for (const id of [running, awaited.id]) {
        const refused = await del(id);
        expect(refused.errors?.[0]?.extensions).toMatchObject({
          code: 'BAD_USER_INPUT',
          field: 'id',
        });
        expect(await exists(sql, id)).toBe(true);
      }
      // Counts before, on the other instance (its log not yet folded), and after the delete.
      await expectExactCounts(b, sql, project);
      expect(dataOf(await del(done.id, b)).deleteRun).toBe(true);
      for (const id of [done.id, ...done.stepIds]) expect(await exists(sql, id)).toBe(false);
      await expectExactCounts(a, sql, project);
      await new Promise((resolve) => setTimeout(resolve, 300));
      await expectExactCounts(b, sql, project);
      expect((await del(done.id)).errors?.[0]?.extensions?.['code']).toBe('NOT_FOUND');
    });
  });

  it('a delete racing a resume on two instances: exactly one lands, and counts stay exact', async () => {
    await withTwoServers(null, async (a, b, sql) => {
      const project = uniqueProject('delete-race');
      const outcomes: string[] = [];
      for (let round = 0; round < 6; round++) {
        const id = await create(a, { project });
        await move(a, id, 'RUNNING');
        await move(a, id, 'FAILED');
        const [deleted, resumed] = await Promise.all([
          a.gql<{ deleteRun: boolean }>(`mutation($id: ID!) { deleteRun(id: $id) }`, { id }),
          b.gql<{ resumeRun: { __typename: string } }>(
            `mutation($id: ID!) { resumeRun(id: $id) { __typename } }`,
            { id },
          ),
        ]);
        if (deleted.data?.deleteRun === true) {
          // The delete came first: the resume found no run, and none is left.
          expect(resumed.data?.resumeRun.__typename).toBe('RunNotFound');
          expect(await exists(sql, id)).toBe(false);
          outcomes.push('deleted');
        } else {
          // The resume came first: the delete was refused (not done), the run goes on.
          expect(deleted.errors?.[0]?.extensions?.['code']).toBe('BAD_USER_INPUT');
          expect(resumed.data?.resumeRun.__typename).toBe('TransitionAccepted');
          expect(await exists(sql, id)).toBe(true);
          outcomes.push('resumed');
        }
        await expectExactCounts(a, sql, project);
        await expectExactCounts(b, sql, project);
      }
      expect(outcomes).toHaveLength(6);
    });
  });
});
