import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildPgliteTemplate, createPgliteDatabase } from '../../src/db/client.js';
import {
  createRun,
  dataOf,
  latestCursorOf,
  record,
  transitionRun,
  untilTailPast,
  waitUntil,
} from '../support/operations.js';
import { startServer } from '../support/server.js';

/** The embedded default: no DATABASE_URL, everything in a data directory. */
describe('embedded PGlite database', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'runstate-pglite-'));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('migrates a new directory and serves create → transition → query → subscribe', async () => {
    // PGlite creates this database itself (the other path, a build's template, is below).
    const database = await createPgliteDatabase({ dataDir, template: null });
    await database.migrate();
    const server = await startServer({ database });
    try {
      const run = await createRun(server, { project: 'embedded', name: 'first', tags: ['x'] });
      expect(run).toMatchObject({ status: 'CREATED', version: 1 });
      // The tail past the creation first, so that the subscription cannot receive it late.
      await untilTailPast(server, await latestCursorOf(server, run.id));

      const changes = record<{ statusChanged: { to: string; version: number; runId: string } }>(
        server.wsClient(),
        `subscription($id: ID!) { statusChanged(filter: { runIds: [$id] }) { runId to version } }`,
        { id: run.id },
      );
      await waitUntil('the subscription', () => server.app.services.events.size() > 0);

      expect(await transitionRun(server, { id: run.id, to: 'RUNNING' })).toMatchObject({
        __typename: 'TransitionAccepted',
        change: { from: 'CREATED', to: 'RUNNING', version: 2 },
      });
      expect(
        await transitionRun(server, { id: run.id, to: 'SUCCEEDED', message: 'done' }),
      ).toMatchObject({
        __typename: 'TransitionAccepted',
        run: { status: 'SUCCEEDED', version: 3, stopMessage: 'done' },
      });
      const live = await changes.waitFor(2);
      expect(live.map((c) => [c.statusChanged.to, c.statusChanged.version])).toEqual([
        ['RUNNING', 2],
        ['SUCCEEDED', 3],
      ]);
      changes.dispose();

      // A batch of common changes: one statement, on PGlite too, its meta kept as an object.
      const more = [
        await createRun(server, { project: 'embedded-batch' }),
        await createRun(server, { project: 'embedded-batch' }),
      ];
      const batch = dataOf(
        await server.gql<{ transitionRuns: unknown[] }>(
          `mutation($inputs: [TransitionRunInput!]!) {
            transitionRuns(inputs: $inputs) { ... on TransitionAccepted { change { to version meta } } } }`,
          { inputs: more.map((r, i) => ({ id: r.id, to: 'RUNNING', meta: { i } })) },
        ),
      );
      expect(batch.transitionRuns).toEqual(
        more.map((_, i) => ({ change: { to: 'RUNNING', version: 2, meta: { i } } })),
      );

      const listed = dataOf(
        await server.gql<{ runs: { edges: { node: { id: string; status: string } }[] } }>(
          `{ runs(filter: { project: "embedded", nameContains: "fir", tags: ["x"] }) { edges { node { id status } } } }`,
        ),
      );
      expect(listed.runs.edges.map((e) => e.node)).toEqual([{ id: run.id, status: 'SUCCEEDED' }]);
    } finally {
      await server.stop();
      await database.close();
    }
  });

  it('keeps its data across restarts, and migrating again changes nothing', async () => {
    const database = await createPgliteDatabase({ dataDir });
    await database.migrate();
    const server = await startServer({ database });
    try {
      // Resuming from a cursor works on the embedded database too.
      const log = dataOf(
        await server.gql<{ statusChanges: { edges: { node: { cursor: string; to: string } }[] } }>(
          `{ statusChanges(filter: { projects: ["embedded"] }) { edges { node { cursor to } } } }`,
        ),
      ).statusChanges.edges.map((e) => e.node);
      expect(log.map((c) => c.to)).toEqual(['CREATED', 'RUNNING', 'SUCCEEDED']);
      const resumed = record<{ statusChanged: { to: string } }>(
        server.wsClient(),
        `subscription($after: String) { statusChanged(after: $after, filter: { projects: ["embedded"] }) { to } }`,
        { after: log[0]!.cursor },
      );
      expect((await resumed.waitFor(2)).map((c) => c.statusChanged.to)).toEqual([
        'RUNNING',
        'SUCCEEDED',
      ]);
      resumed.dispose();

      const found = dataOf(
        await server.gql<{ runs: { edges: { node: { name: string; version: number } }[] } }>(
          `{ runs(filter: { project: "embedded" }) { edges { node { name version } } } }`,
        ),
      );
      expect(found.runs.edges.map((e) => e.node)).toEqual([{ name: 'first', version: 3 }]);
    } finally {
      await server.stop();
      await database.close();
    }
  });
});

describe('embedded PGlite from the template `npm run build` makes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'runstate-pglite-template-'));
  const template = join(dir, 'template');
  const dataDir = join(dir, 'data');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('starts a new directory migrated and empty, serves it, and keeps what it wrote', async () => {
    await buildPgliteTemplate(template);
    expect(existsSync(join(template, 'PG_VERSION'))).toBe(true);
    // A service need not run as the user who built it (a container's): all of it is readable.
    expect(notReadableByAll(template)).toEqual([]);
    const first = await createPgliteDatabase({ dataDir, template });
    await first.migrate();
    const server = await startServer({ database: first });
    let id: string;
    try {
      const empty = dataOf(
        await server.gql<{ runs: { edges: unknown[] } }>(`{ runs { edges { cursor } } }`),
      );
      expect(empty.runs.edges).toEqual([]);
      id = (await createRun(server, { project: 'templated' })).id;
      expect(await transitionRun(server, { id, to: 'RUNNING' })).toMatchObject({
        __typename: 'TransitionAccepted',
      });
    } finally {
      await server.stop();
      await first.close();
    }
    // Reopened, the directory is not fresh: the template is not laid over it again.
    const again = await createPgliteDatabase({ dataDir, template });
    await again.migrate();
    const reopened = await startServer({ database: again });
    try {
      const run = dataOf(
        await reopened.gql<{ run: { status: string } }>(
          `query($id: ID!) { run(id: $id) { status } }`,
          {
            id: id!,
          },
        ),
      );
      expect(run.run.status).toBe('RUNNING');
    } finally {
      await reopened.stop();
      await again.close();
    }
  });

  it('a directory whose copy of the template was cut short is copied again and serves', async () => {
    // What a start killed while copying leaves: every file but PG_VERSION, which goes last.
    const cut = join(dir, 'cut');
    cpSync(template, cut, {
      recursive: true,
      filter: (source) => source !== join(template, 'PG_VERSION'),
    });
    expect(existsSync(join(cut, 'PG_VERSION'))).toBe(false);
    const database = await createPgliteDatabase({ dataDir: cut, template });
    await database.migrate();
    const server = await startServer({ database });
    try {
      const empty = dataOf(
        await server.gql<{ runs: { edges: unknown[] } }>(`{ runs { edges { cursor } } }`),
      );
      expect(empty.runs.edges).toEqual([]);
      expect((await createRun(server, { project: 'recopied' })).status).toBe('CREATED');
    } finally {
      await server.stop();
      await database.close();
    }
  });
});

/** The paths under `path` that others may not read (or, for a directory, search). */
function notReadableByAll(path: string): string[] {
  const stat = statSync(path);
  const needed = stat.isDirectory() ? 0o005 : 0o004;
  const own = (stat.mode & needed) === needed ? [] : [path];
  if (!stat.isDirectory()) return own;
  return [...own, ...readdirSync(path).flatMap((entry) => notReadableByAll(join(path, entry)))];
}
