import { expect, it } from 'vitest';
import { createRun, dataOf } from '../support/operations.js';
import { authHeader, useServer, uniqueProject } from '../support/server.js';

// A query sent again runs as compiled code (graphql-jit; graphql/compiled-queries.ts): its first
// execution is the executor's, the later ones compiled. Whatever a query asks, and however it goes
// wrong, every answer is the first one, with its HTTP status. (Not byte for byte: the compiled
// answer writes a page's fields in the order the query asks them, as the spec says, where the
// executor wrote `pageInfo`, resolved at once, before `edges`.)

const server = useServer();

/** The answer to a POST of `query` with `variables`: its status and body. */
async function post(query: string, variables?: Record<string, unknown>) {
  const response = await fetch(server.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...authHeader() },
    body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** The same query sent four times, one after another: the first answer, which all equal. */
async function answeredAlike(query: string, variables?: Record<string, unknown>) {
  const first = await post(query, variables);
  for (let i = 0; i < 3; i++) expect(await post(query, variables)).toEqual(first);
  return first;
}

it('a page with aliases, fragments, nested fields and an input field left to its default', async () => {
  const project = uniqueProject('compiled');
  const parent = await createRun(server, { project, name: 'parent' });
  for (const name of ['a', 'b', 'c'])
    await createRun(server, { project, name, parentId: parent.id, tags: [name] });
  // RunOrder.field is RunOrderField! = CREATED_AT: left out, it is CREATED_AT.
  const query = `# page
    query Page($project: String, $order: RunOrder) {
      oldest: runs(filter: { project: $project }, first: 2, orderBy: $order) {
        edges { cursor node { ...Named kind: __typename parent { name } } }
        pageInfo { hasNextPage endCursor }
      }
      all: runs(filter: { project: $project }) { edges { node { ... on Run { name tags } } } }
    }
    fragment Named on Run { id name status isDone }`;
  const { status, body } = await answeredAlike(query, { project, order: { direction: 'ASC' } });
  expect(status).toBe(200);
  const data = body['data'] as {
    oldest: { edges: { node: Record<string, unknown> }[]; pageInfo: { hasNextPage: boolean } };
    all: { edges: { node: { name: string; tags: string[] } }[] };
  };
  expect(body['errors']).toBeUndefined();
  expect(data.oldest.edges.map((e) => e.node)).toEqual([
    expect.objectContaining({
      name: 'parent',
      status: 'CREATED',
      isDone: false,
      kind: 'Run',
      parent: null,
    }),
    expect.objectContaining({ name: 'a', kind: 'Run', parent: { name: 'parent' } }),
  ]);
  expect(data.oldest.pageInfo.hasNextPage).toBe(true);
  expect(data.all.edges.map((e) => e.node)).toEqual([
    { name: 'c', tags: ['c'] },
    { name: 'b', tags: ['b'] },
    { name: 'a', tags: ['a'] },
    { name: 'parent', tags: [] },
  ]);
});

it('variables that do not coerce are refused with 400 and the same errors every time', async () => {
  const cases = [
    { statuses: ['BOGUS'] },
    { first: 'ten' },
    { order: { direction: null } },
    { order: { field: 'CREATED_AT', extra: 1 } },
  ];
  for (const [i, variables] of cases.entries()) {
    // A document of its own each time, so that the first answer is the uncompiled one.
    const query = `# refused ${i}
      query($statuses: [RunStatus!], $first: Int, $order: RunOrder) {
        runs(filter: { statuses: $statuses }, first: $first, orderBy: $order) { edges { cursor } } }`;
    const { status, body } = await answeredAlike(query, variables);
    expect(status).toBe(400);
    expect(body['errors']).toEqual([
      expect.objectContaining({ extensions: expect.objectContaining({ code: 'BAD_USER_INPUT' }) }),
    ]);
    // And the compiled document still answers good variables.
    expect((await post(query, { first: 1 })).status).toBe(200);
  }
});

it('an error inside a query keeps its code, path and place in the query', async () => {
  // Lines broken three ways, as clients send them: the place is counted as graphql-js counts it.
  const query =
    '# located\r\nquery($id: ID!) {\r  name: __typename\n  missing: run(id: $id) { id }\n}';
  const { status, body } = await answeredAlike(query, { id: 'not-a-uuid' });
  expect(status).toBe(200);
  expect(body).toEqual({
    errors: [
      {
        message: 'id: must be a UUID',
        locations: [{ line: 4, column: 3 }],
        path: ['missing'],
        extensions: { code: 'BAD_USER_INPUT', field: 'id' },
      },
    ],
    data: { name: 'Query', missing: null },
  });
});

it('the same new query from many clients at once: every answer is right', async () => {
  const project = uniqueProject('compiled-burst');
  const run = await createRun(server, { project, name: 'only' });
  const query = `# burst
    query($project: String) { runs(filter: { project: $project }) { edges { node { id name } } } }`;
  const answers = await Promise.all(
    Array.from({ length: 24 }, () => server.gql<{ runs: unknown }>(query, { project })),
  );
  for (const answer of answers)
    expect(dataOf(answer).runs).toEqual({ edges: [{ node: { id: run.id, name: 'only' } }] });
});

it('a bad value used in two places is one error, as the executor answered it', async () => {
  const run = await createRun(server, { project: uniqueProject('compiled-twice'), name: 'r' });
  const query = `# twice
    query($id: ID!, $first: Int) {
      run(id: $id) { statusHistory(first: $first) { edges { cursor } }
                     measurements(first: $first) { edges { cursor } } } }`;
  const { status, body } = await answeredAlike(query, { id: run.id, first: 0 });
  expect(status).toBe(200);
  expect(body).toEqual({
    errors: [expect.objectContaining({ path: ['run', 'statusHistory'] })],
    data: { run: null },
  });
});
