import { createClient, type Client, type ExecutionResult } from 'graphql-sse';
import { createSchema, createYoga } from 'graphql-yoga';
import { useSingleConnectionSSE } from '../../src/server/graphql-sse.js';
import { afterEach, describe, expect, it } from 'vitest';
import { createRun, transitionRun, waitUntil } from '../support/operations.js';
import { authHeader, uniqueProject, useServer } from '../support/server.js';
import { subscribeSse } from '../support/sse.js';

// The graphql-sse protocol's single connection mode (one event stream, reserved with PUT, that
// carries many operations) at <GraphQL path>/stream, next to the distinct connections mode yoga
// serves on the GraphQL path itself. Each operation is authenticated by its own token.

const server = useServer();
const clients: Client<true>[] = [];
afterEach(() => {
  for (const client of clients.splice(0)) client.dispose();
});

const streamUrl = () => `${server.url}/stream`;

function client(token?: string | null): Client<true> {
  const created = createClient({
    singleConnection: true,
    url: streamUrl(),
    headers: authHeader({ token }),
    retryAttempts: 0,
  });
  clients.push(created);
  return created;
}

interface StatusChanged {
  statusChanged: { runId: string; to: string };
}

/** Subscribe; answers what arrives, and how it ended. */
function watch<T>(sse: Client<true>, query: string, variables: Record<string, unknown> = {}) {
  const results: ExecutionResult<T>[] = [];
  let error: unknown = null;
  let done = false;
  const dispose = sse.subscribe<T>(
    { query, variables },
    {
      next: (result) => void results.push(result as ExecutionResult<T>),
      error: (e) => {
        error = e;
        done = true;
      },
      complete: () => void (done = true),
    },
  );
  return {
    results,
    dispose,
    get error() {
      return error;
    },
    get done() {
      return done;
    },
  };
}

const STATUS_CHANGED = `subscription($p: String!) { statusChanged(filter: { projects: [$p] }) { runId to } }`;

describe('graphql-sse, single connection mode', () => {
  it('reserves a stream with PUT, and delivers subscription events and query answers on it', async () => {
    const project = uniqueProject('sse1');
    const sse = client();
    const first = watch<StatusChanged>(sse, STATUS_CHANGED, { p: project });
    const second = watch<StatusChanged>(sse, STATUS_CHANGED, { p: project });
    // Subscribed once a query sent on the same stream after them is answered.
    const lifecycle = await new Promise<ExecutionResult>((resolve, reject) =>
      sse.subscribe(
        { query: '{ lifecycle { statuses { status } } }' },
        {
          next: resolve,
          error: reject,
          complete: () => {},
        },
      ),
    );
    expect(lifecycle.errors).toBeUndefined();

    const run = await createRun(server, { project, name: 'one-stream' });
    await transitionRun(server, { id: run.id, to: 'RUNNING' });
    await waitUntil(
      'both events on both subscriptions',
      () => first.results.length >= 2 && second.results.length >= 2,
    );
    expect(first.results.map((r) => r.data?.statusChanged)).toEqual([
      { runId: run.id, to: 'CREATED' },
      { runId: run.id, to: 'RUNNING' },
    ]);
    expect(second.results).toEqual(first.results);
    first.dispose();
    second.dispose();
  });

  it('a reservation needs a valid token; an operation with a bad token is refused on the stream', async () => {
    const refused = await fetch(streamUrl(), { method: 'PUT' });
    expect(refused.status).toBe(401);
    const wrong = await fetch(streamUrl(), {
      method: 'PUT',
      headers: { authorization: 'Bearer rst_not-a-real-token' },
    });
    expect(wrong.status).toBe(401);
    const reserved = await fetch(streamUrl(), { method: 'PUT', headers: authHeader() });
    expect(reserved.status).toBe(201);
    expect(await reserved.text()).toMatch(/^[0-9a-f-]{36}$/);

    const sse = client(null);
    const anonymous = watch(sse, STATUS_CHANGED, { p: uniqueProject('anon') });
    await waitUntil('the refusal', () => anonymous.done);
    expect(anonymous.results).toEqual([]);
    expect(String(anonymous.error)).toMatch(/401|Unauthorized/);
  });

  it('limits and masking apply as on the GraphQL path', async () => {
    const sse = client();
    const costly = watch(
      sse,
      `{ runs(first: 500) { edges { node { statusHistory(first: 500) { edges { cursor } } } } } }`,
    );
    await waitUntil('the refusal', () => costly.done);
    expect(costly.results[0]?.errors?.[0]?.extensions).toMatchObject({
      code: 'LIMIT_EXCEEDED',
      limit: 'cost',
    });
    // Refused at validation: the errors arrive on the stream too.
    const unknown = watch(sse, `{ noSuchField }`);
    await waitUntil('the refusal', () => unknown.done);
    expect(unknown.results[0]?.errors?.[0]?.extensions).toMatchObject({
      code: 'GRAPHQL_VALIDATION_FAILED',
    });
    const broken = watch(sse, `{ lifecycle {`);
    await waitUntil('the refusal', () => broken.done);
    // A document that does not parse is answered 400, as graphql-sse itself does.
    expect(broken.results).toEqual([]);
    expect(String(broken.error)).toContain('400');
  });

  it("the distinct connections mode still works on the GraphQL path (yoga's own SSE)", async () => {
    const project = uniqueProject('sse-distinct');
    const subscription = await subscribeSse<StatusChanged>(server.url, STATUS_CHANGED, {
      p: project,
    });
    expect(subscription.status).toBe(200);
    const run = await createRun(server, { project, name: 'distinct' });
    await waitUntil('the event', () => subscription.results.length >= 1);
    expect(subscription.results[0]?.data?.statusChanged).toEqual({
      runId: run.id,
      to: 'CREATED',
    });
    subscription.close();
  });

  it('a reservation never opened is dropped after its time', async () => {
    const yoga = createYoga({
      schema: createSchema({ typeDefs: 'type Query { ok: Boolean }' }),
      plugins: [
        useSingleConnectionSSE({
          graphqlPath: '/graphql',
          auth: { authenticate: async () => ({}) as never },
          reservationTtlMs: 50,
        }),
      ],
    });
    const url = 'http://localhost/graphql/stream';
    const open = (token: string) =>
      yoga.fetch(url, {
        headers: { accept: 'text/event-stream', 'x-graphql-event-stream-token': token },
      });
    const kept = await (await yoga.fetch(url, { method: 'PUT' })).text();
    const dropped = await (await yoga.fetch(url, { method: 'PUT' })).text();
    // One is opened in time: it stays until its client closes it.
    const stream = await open(kept);
    expect(stream.status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 200));
    // The other is gone: its token names no stream (a GET without one is a bad request).
    expect((await open(dropped)).status).toBe(400);
    expect((await open(kept)).status).toBe(409); // still open
    await stream.body?.cancel();
  });
});
