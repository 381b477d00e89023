import { buildSchema, getNamedType, isLeafType, type GraphQLObjectType } from 'graphql';
import { readFileSync } from 'node:fs';
import { sql } from 'drizzle-orm';
import { expect, inject, it } from 'vitest';
import { createPostgresDatabase } from '../../src/db/client.js';
import { listRuns } from '../../src/runs/run-queries.js';
import { createRun, dataOf, transitionRun } from '../support/operations.js';
import { uniqueProject, useRecordingServer } from '../support/server.js';

// A page of runs reads the columns its nodes ask for, not whole rows (issue 18). Whatever a
// page asks, each field answers what a whole row would: checked field by field against run(id),
// which reads the whole row.

const { server, statements } = useRecordingServer();

/** Run's fields without arguments whose values are scalars or enums (lists of them too). */
const LEAF_FIELDS = Object.values(
  (
    buildSchema(readFileSync('schema.graphql', 'utf8')).getType('Run') as GraphQLObjectType
  ).getFields(),
)
  .filter((f) => f.args.length === 0 && isLeafType(getNamedType(f.type)))
  .map((f) => f.name);

async function page(project: string, selection: string) {
  return dataOf(
    await server.gql<{ runs: { edges: { node: Record<string, unknown> }[] } }>(
      `query($project: String) {
        runs(filter: { project: $project }, first: 10) { edges { node { id ${selection} } } } }`,
      { project },
    ),
  ).runs.edges.map((e) => e.node);
}

// Column lists are kept per process, at most 64 (row-reader.ts): the test of which columns
// are read comes first, before the others have made many.
it('a page of names reads a few columns, and one asking for more reads what it needs', async () => {
  const project = uniqueProject('run-columns');
  await createRun(server, { project, name: 'one', meta: { big: 'x'.repeat(1000) } });
  const pageQuery = () => statements.filter((s) => /FROM runs WHERE/.test(s)).at(-1)!;

  statements.length = 0;
  expect(await page(project, 'name createdAt')).toHaveLength(1);
  const narrow = pageQuery();
  expect(narrow).toMatch(/"name"/);
  expect(narrow).not.toMatch(/"meta"|"attributes"|"trigger"/);

  statements.length = 0;
  const [node] = await page(project, 'name meta isDone ... on Run { tags }');
  expect(node).toMatchObject({ name: 'one', meta: { big: 'x'.repeat(1000) }, isDone: false });
  const wider = pageQuery();
  expect(wider).toMatch(/"meta"/);
  expect(wider).toMatch(/"tags"/);
  expect(wider).not.toMatch(/"attributes"/);

  // A field with a resolver of its own that the page cannot vouch for: the whole row.
  statements.length = 0;
  await page(project, 'name duration');
  expect(pageQuery()).toMatch(/"attributes"/);
});

it('every field of a page answers what the whole run answers, asked alone and all together', async () => {
  expect(LEAF_FIELDS).toEqual(expect.arrayContaining(['name', 'status', 'category', 'meta']));
  const project = uniqueProject('run-fields');
  const parent = await createRun(server, { project, name: 'parent' });
  const run = await createRun(server, {
    project,
    name: 'a run',
    tags: ['x', 'y'],
    meta: { k: 1 },
    attributes: { owner: 'me' },
    maxRetries: 2,
    parentId: parent.id,
  });
  await transitionRun(server, { id: run.id, to: 'RUNNING' });
  await transitionRun(server, { id: run.id, to: 'SUCCEEDED', outcome: 'ok', exitCode: 0 });
  const whole = async (id: string) =>
    dataOf(
      await server.gql<{ run: Record<string, unknown> }>(
        `query($id: ID!) { run(id: $id) { id ${LEAF_FIELDS.join(' ')} } }`,
        { id },
      ),
    ).run;
  const expected = [await whole(run.id), await whole(parent.id)]; // newest first
  for (const field of LEAF_FIELDS) {
    const nodes = await page(project, field);
    expect(nodes, field).toEqual(expected.map((r) => ({ id: r['id'], [field]: r[field] })));
  }
  expect(await page(project, LEAF_FIELDS.join(' '))).toEqual(expected);
});

it('past 64 different column lists, a page reads whole rows, and still answers right', async () => {
  const project = uniqueProject('run-lists');
  const run = await createRun(server, { project, name: 'many', tags: ['t'] });
  const vouched = ['name', 'tags', 'meta', 'version', 'revision', 'attempt', 'maxRetries'];
  // Every subset of seven fields is its own column list: 128 of them, more than are kept.
  for (let mask = 1; mask < 2 ** vouched.length; mask++) {
    const fields = vouched.filter((_, i) => mask & (1 << i));
    const [node] = await page(project, fields.join(' '));
    expect(node).toMatchObject({ id: run.id, ...(mask & 1 ? { name: 'many' } : {}) });
  }
  statements.length = 0;
  await page(project, 'name stopMessage heartbeatAt');
  const read = statements.filter((s) => /FROM runs WHERE/.test(s)).at(-1)!;
  expect(read).toMatch(/"attributes"/); // the whole row
});

it('a page asking for totalCount, under a fragment too, answers the count', async () => {
  const project = uniqueProject('run-total');
  for (const name of ['a', 'b', 'c']) await createRun(server, { project, name });
  const answer = dataOf(
    await server.gql<{ runs: { totalCount: number; edges: unknown[] } }>(
      `query($project: String) {
        runs(filter: { project: $project }, first: 2) { ...Total edges { node { name } } } }
      fragment Total on RunConnection { totalCount }`,
      { project },
    ),
  );
  expect(answer.runs).toMatchObject({ totalCount: 3, edges: [{}, {}] });
});

it('a page counts while its rows are read when totalCount is asked for, and only then', async () => {
  const project = uniqueProject('run-count-early');
  for (const name of ['a', 'b', 'c']) await createRun(server, { project, name });
  // A pool of its own, its connections open: nothing else waits on it.
  const sent: string[] = [];
  const database = createPostgresDatabase({
    url: inject('databaseUrl'),
    poolSize: 4,
    onStatement: (query) => sent.push(query),
  });
  try {
    await Promise.all([1, 2, 3, 4].map(() => database.db.execute(sql`SELECT pg_sleep(0.01)`)));
    const counts = () => sent.filter((s) => /countRunsByStatus/.test(s)).length;
    const args = { filter: { project }, first: 2 };

    const counted = await listRuns(database.db, args, null, {}, { totalCount: true });
    expect(counts()).toBe(1); // sent before the page was in
    expect(await counted.totalCount()).toBe(3);
    expect(counts()).toBe(1); // and not again

    const uncounted = await listRuns(database.db, args, null, {}, { totalCount: false });
    expect(counts()).toBe(1);
    expect(await uncounted.totalCount()).toBe(3);
    expect(counts()).toBe(2);
  } finally {
    await database.close();
  }
});
