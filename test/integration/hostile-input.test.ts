import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { createRun, dataOf, getHistory, RESULT_FIELDS, waitUntil } from '../support/operations.js';
import { useServer, TEST_ADMIN_TOKEN, uniqueProject } from '../support/server.js';

// Inputs that get past GraphQL's type checks and must still be refused as the client's error
// (BAD_USER_INPUT), never reach PostgreSQL, and never cost a connection.

const server = useServer();

const forge = (...parts: unknown[]) => Buffer.from(JSON.stringify(parts)).toString('base64url');

function expectBadInput(
  response: { status: number; errors?: { extensions?: Record<string, unknown> }[] },
  field: string,
) {
  expect(response.status).toBeLessThan(500);
  expect(response.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
}

describe('forged cursors', () => {
  it('are refused for every list, whatever their parts hold', async () => {
    const run = await createRun(server, { project: uniqueProject() });
    const cases: [string, string, Record<string, unknown>][] = [
      ['statusChanges', `query($a: String) { statusChanges(after: $a) { edges { cursor } } }`, {}],
      ['runs', `query($a: String) { runs(after: $a) { edges { cursor } } }`, {}],
      [
        'history',
        `query($a: String, $id: ID!) { run(id: $id) { statusHistory(after: $a) { edges { cursor } } } }`,
        { id: run.id },
      ],
      [
        'measurements',
        `query($a: String, $id: ID!) { run(id: $id) { measurements(after: $a) { edges { cursor } } } }`,
        { id: run.id },
      ],
    ];
    const forged = [
      forge('sc', 'x'),
      forge('sc', -1),
      forge('sc', 1e300),
      forge('run:CREATED_AT:DESC', 'yesterday', run.id),
      forge('run:CREATED_AT:DESC', 8.64e15 + 1, run.id),
      forge('run:CREATED_AT:DESC', 0, 'not-a-uuid'),
      forge(`hist:${run.id}`, 'two'),
      forge(`hist:${run.id}`, 2 ** 40),
      forge(`m:${run.id}`, 'now', 1),
      forge(`m:${run.id}`, 0, -5),
    ];
    for (const [, query, variables] of cases) {
      for (const after of forged) {
        expectBadInput(await server.gql(query, { ...variables, a: after }), 'after');
      }
    }
  });
});

describe('values PostgreSQL would refuse', () => {
  it('NUL characters in filter strings and measurement names', async () => {
    expectBadInput(
      await server.gql(
        `{ statusChanges(filter: { projects: ["a\\u0000b"] }) { edges { cursor } } }`,
      ),
      'filter.projects[0]',
    );
    const run = await createRun(server, { project: uniqueProject() });
    expectBadInput(
      await server.gql(
        `query($id: ID!) { run(id: $id) { measurements(names: ["x\\u0000"]) { edges { cursor } } } }`,
        {
          id: run.id,
        },
      ),
      'names[0]',
    );
  });

  it('dates outside the years 1 to 9999', async () => {
    expectBadInput(
      await server.gql(
        `{ runs(filter: { createdAfter: "0000-01-01T00:00:00Z" }) { edges { cursor } } }`,
      ),
      'filter.createdAfter',
    );
    const run = await createRun(server, { project: uniqueProject() });
    expectBadInput(
      await server.gql(
        `mutation($id: ID!) { recordMeasurements(input: { runId: $id, measurements: [{ name: "a", value: 1, at: "0000-06-01T00:00:00Z" }] }) }`,
        { id: run.id },
      ),
      'input.measurements[0].at',
    );
  });
});

describe('documents nested too deeply for the parser', () => {
  const deep = `mutation { createRun(input: { project: "deep", meta: { a: ${'['.repeat(5000)}${']'.repeat(5000)} } }) { id } }`;

  it('over HTTP: a client error, and the server goes on', async () => {
    const response = await server.gql(deep);
    expect(response.status).toBeLessThan(500);
    expect(response.errors?.[0]?.extensions?.['code']).toBe('BAD_USER_INPUT');
    expect(
      dataOf(await server.gql<{ lifecycle: unknown }>(`{ lifecycle { statuses { status } } }`)),
    ).toBeTruthy();
  });

  it('over WebSocket: an error for that operation; the connection stays open', async () => {
    const socket = new WebSocket(server.wsUrl, 'graphql-transport-ws');
    const messages: { type: string; id?: string; payload?: unknown }[] = [];
    let closed = false;
    socket.on('message', (data) => messages.push(JSON.parse(String(data))));
    socket.on('close', () => (closed = true));
    await new Promise((resolve) => socket.once('open', resolve));
    socket.send(JSON.stringify({ type: 'connection_init', payload: { token: TEST_ADMIN_TOKEN } }));
    await waitUntil('ack', () => messages.some((m) => m.type === 'connection_ack'));
    socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: deep } }));
    await waitUntil('error', () => messages.some((m) => m.id === '1'));
    expect(messages.find((m) => m.id === '1')).toMatchObject({
      type: 'error',
      payload: [{ extensions: { code: 'BAD_USER_INPUT' } }],
    });
    socket.send(
      JSON.stringify({
        id: '2',
        type: 'subscribe',
        payload: { query: '{ lifecycle { statuses { status } } }' },
      }),
    );
    await waitUntil('answer', () => messages.some((m) => m.id === '2' && m.type === 'complete'));
    expect(closed).toBe(false);
    socket.close();
  });
});

it('transitionRuns names the entry of a one-element batch', async () => {
  const response = await server.gql(
    `mutation { transitionRuns(inputs: [{ id: "nope", to: RUNNING }]) { ${RESULT_FIELDS} } }`,
  );
  expectBadInput(response, 'inputs[0].id');
});

it("a run's history times never go backwards, however its changes queue for the lock", async () => {
  const run = await createRun(server, { project: uniqueProject() });
  await Promise.all(
    Array.from({ length: 40 }, (_, i) =>
      server.gql(
        `mutation($id: ID!, $to: RunStatus!) { transitionRun(input: { id: $id, to: $to }) { __typename } }`,
        {
          id: run.id,
          to: i % 2 ? 'RUNNING' : 'PROCESSING',
        },
      ),
    ),
  );
  const history = await server.gql<{
    run: { statusHistory: { edges: { node: { at: string } }[] } };
  }>(`query($id: ID!) { run(id: $id) { statusHistory(first: 100) { edges { node { at } } } } }`, {
    id: run.id,
  });
  const times = dataOf(history).run.statusHistory.edges.map((e) => Date.parse(e.node.at));
  expect(times.length).toBeGreaterThan(2);
  expect(times).toEqual([...times].sort((x, y) => x - y));
  expect((await getHistory(server, run.id)).length).toBe(times.length);
});

describe('documents nested too deeply for validation', () => {
  // Inline fragments nested a few thousand deep parse, but graphql-js's validation rules recurse
  // through them and, depending on the stack left, overflowed it (a 500). The nesting is now
  // capped before validation; 300 levels (600 AST levels) is over the cap and well within the
  // parser's reach, so this is refused by the cap itself, deterministically.
  const fragments = `{ ${'... on Query { '.repeat(300)}__typename${' }'.repeat(300)} }`;

  it('over HTTP and WebSocket: BAD_USER_INPUT, and the connection stays usable', async () => {
    const response = await server.gql(fragments);
    expect(response.status).toBe(400);
    expect(response.errors?.[0]?.extensions?.['code']).toBe('BAD_USER_INPUT');

    const client = server.wsClient();
    const result = await new Promise<unknown>((resolve) => {
      client.subscribe(
        { query: fragments },
        { next: () => {}, error: resolve, complete: () => {} },
      );
    });
    expect(result).toMatchObject([{ extensions: { code: 'BAD_USER_INPUT' } }]);
    const ok = await new Promise<unknown>((resolve, reject) => {
      client.subscribe(
        { query: '{ viewer { role } }' },
        { next: resolve, error: reject, complete: () => {} },
      );
    });
    expect(ok).toEqual({ data: { viewer: { role: 'ADMIN' } } });
  });
});

describe('a syntax error', () => {
  it('is GRAPHQL_PARSE_FAILED on both transports, whichever met the document first', async () => {
    const broken = `{ viewer { role ${Math.random().toString(36).slice(2)}`;
    const client = server.wsClient();
    const overWs = await new Promise<unknown>((resolve) => {
      client.subscribe({ query: broken }, { next: () => {}, error: resolve, complete: () => {} });
    });
    expect(overWs).toMatchObject([{ extensions: { code: 'GRAPHQL_PARSE_FAILED' } }]);
    const overHttp = await server.gql(broken);
    expect(overHttp.status).toBe(400);
    expect(overHttp.errors?.[0]?.extensions?.['code']).toBe('GRAPHQL_PARSE_FAILED');
  });
});

describe('a POST whose Accept admits no answer', () => {
  it('is refused with 406 before it runs: the mutation writes nothing', async () => {
    const project = uniqueProject('accept');
    const response = await fetch(server.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'text/html',
        authorization: `Bearer ${TEST_ADMIN_TOKEN}`,
      },
      body: JSON.stringify({
        query: `mutation($p: String!) { createRun(input: { project: $p }) { id } }`,
        variables: { p: project },
      }),
    });
    expect(response.status).toBe(406);
    const runs = await server.gql<{ runs: { edges: unknown[] } }>(
      `query($p: String!) { runs(filter: { project: $p }) { edges { cursor } } }`,
      { p: project },
    );
    expect(dataOf(runs).runs.edges).toEqual([]);
  });
});
