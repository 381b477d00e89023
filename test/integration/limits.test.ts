import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRun, dataOf, record, waitUntil } from '../support/operations.js';
import {
  authHeader,
  startServer,
  useServer,
  uniqueProject,
  type GqlResponse,
  type TestServer,
} from '../support/server.js';

// Every limit (issue 5) is configurable and answered with a clear code: LIMIT_EXCEEDED naming
// the limit in `extensions.limit`, or RATE_LIMITED with `retryAfter`. A refused operation runs
// nothing. The server here is configured with small limits so each can be reached cheaply.

const LIMITS = {
  maxDepth: 6,
  maxAliases: 3,
  maxDirectives: 4,
  maxCost: 2_000,
  maxTokens: 400,
  maxBodyBytes: 8_192,
  maxSubscriptionsPerConnection: 2,
  maxSubscriptionsPerToken: 3,
  introspection: false,
};

const server = useServer({ limits: LIMITS });

function expectLimit(response: GqlResponse<unknown>, limit: string, max: number) {
  expect(response.status).toBeLessThan(500);
  expect(response.data ?? null).toBeNull();
  expect(response.errors?.[0]?.extensions).toMatchObject({ code: 'LIMIT_EXCEEDED', limit, max });
}

async function runCount(project: string): Promise<number> {
  const response = await server.gql<{ runs: { edges: unknown[] } }>(
    `query($p: String!) { runs(filter: { project: $p }) { edges { cursor } } }`,
    { p: project },
  );
  return dataOf(response).runs.edges.length;
}

describe('operation limits', () => {
  it('depth: refused above the limit, answered at it', async () => {
    // Depth counts nested fields: runs > edges > node > statusHistory > edges > node > to is 7.
    const deep = `{ runs(first: 1) { edges { node { statusHistory(first: 1) { edges { node { to } } } } } } }`;
    expectLimit(await server.gql(deep), 'depth', 6);
    const atLimit = `{ runs(first: 1) { edges { node { statusHistory(first: 1) { edges { cursor } } } } } }`;
    expect((await server.gql(atLimit)).errors).toBeUndefined();
  });

  it('aliases: an alias flood of mutations is refused whole and writes nothing', async () => {
    const project = uniqueProject('alias');
    const flood = `mutation($p: String!) { ${[1, 2, 3, 4]
      .map((i) => `r${i}: createRun(input: { project: $p }) { id }`)
      .join(' ')} }`;
    expectLimit(await server.gql(flood, { p: project }), 'aliases', 3);
    expect(await runCount(project)).toBe(0);
  });

  it('directives: too many are refused', async () => {
    const query = `{ lifecycle @skip(if: false) { statuses @include(if: true) { status @include(if: true) color @include(if: true) isFinal @include(if: true) } } }`;
    expectLimit(await server.gql(query), 'directives', 4);
  });

  it('cost: nested pages multiply, with `first` read from each request’s variables', async () => {
    const nested = `query($n: Int) { runs(first: $n) { edges { node { id statusHistory(first: $n) { edges { cursor } } } } } }`;
    // The same document, cheap then expensive: the verdict must not be cached with the document.
    expect((await server.gql(nested, { n: 5 })).errors).toBeUndefined();
    expectLimit(await server.gql(nested, { n: 100 }), 'cost', 2_000);
    // Without `first`, a connection is priced at its default page.
    expectLimit(
      await server.gql(`{ runs { edges { node { statusHistory { edges { cursor } } } } } }`),
      'cost',
      2_000,
    );
    // Over WebSocket too.
    const ws = record(server.wsClient(), nested, { n: 100 });
    await ws.ended;
    expect(ws.results[0]?.errors?.[0]?.extensions).toMatchObject({
      code: 'LIMIT_EXCEEDED',
      limit: 'cost',
    });
  });

  it('tokens: a document longer than the limit is refused while parsing', async () => {
    const long = `{ ${Array.from({ length: 200 }, () => 'lifecycle { statuses { status } }').join(' ')} }`;
    expectLimit(await server.gql(long), 'tokens', 400);
  });

  it('introspection is off, and so are "Did you mean" hints', async () => {
    const schema = await server.gql(`{ __schema { types { name } } }`);
    expect(schema.errors?.[0]?.extensions?.['code']).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(schema.errors?.[0]?.message).toMatch(/introspection/i);
    const typo = await server.gql(`{ lifecycl { statuses { status } } }`);
    expect(typo.errors?.[0]?.extensions?.['code']).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(typo.errors?.[0]?.message).not.toContain('Did you mean');
  });
});

describe('request body size', () => {
  /** POST raw bytes with the node http client, so Content-Length and chunking are ours. */
  function rawPost(
    body: string,
    chunked: boolean,
  ): Promise<{ status: number; body: GqlResponse<unknown> }> {
    return new Promise((resolve, reject) => {
      const url = new URL(server.url);
      const req = httpRequest(
        {
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            ...authHeader(),
            ...(chunked
              ? { 'transfer-encoding': 'chunked' }
              : { 'content-length': Buffer.byteLength(body) }),
          },
        },
        (res) => {
          let text = '';
          res.on('data', (chunk: Buffer) => (text += chunk.toString()));
          res.on('end', () =>
            resolve({ status: res.statusCode!, body: JSON.parse(text) as GqlResponse<unknown> }),
          );
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  it('a body over the limit is refused with 413 before it is read, and writes nothing', async () => {
    const project = uniqueProject('big');
    const body = JSON.stringify({
      query: `mutation($p: String!, $m: JSON) { createRun(input: { project: $p, meta: $m }) { id } }`,
      variables: { p: project, m: { pad: 'x'.repeat(10_000) } },
    });
    const response = await rawPost(body, false);
    expect(response.status).toBe(413);
    expect(response.body.errors?.[0]?.extensions).toMatchObject({
      code: 'LIMIT_EXCEEDED',
      limit: 'bodyBytes',
      max: 8_192,
    });
    expect(await runCount(project)).toBe(0);
  });

  it('a chunked body (no Content-Length) is refused with 411; a small body is served', async () => {
    const body = JSON.stringify({ query: '{ lifecycle { statuses { status } } }' });
    expect((await rawPost(body, true)).status).toBe(411);
    expect((await rawPost(body, false)).status).toBe(200);
  });
});

describe('subscriptions', () => {
  const query = `subscription { statusChanged { runId } }`;

  it('per connection: the third operation on one socket is refused, the others go on', async () => {
    const client = server.wsClient();
    const first = record(client, query);
    const second = record(client, query);
    const third = record(client, query);
    // graphql-ws answers an operation refused before it starts with an `error` message.
    const ended = (await third.ended) as { error?: { extensions?: unknown }[] };
    expect(ended.error?.[0]?.extensions).toMatchObject({
      code: 'LIMIT_EXCEEDED',
      limit: 'subscriptionsPerConnection',
      max: 2,
    });
    const project = uniqueProject('conn');
    await createRun(server, { project });
    await Promise.all([first.waitFor(1), second.waitFor(1)]);
    const withFirst = server.app.services.events.size();
    first.dispose();
    // A freed slot can be used again (graphql-ws frees it when the complete message arrives).
    await waitUntil('the first one ended', () => server.app.services.events.size() < withFirst);
    const live = server.app.services.events.size();
    const fourth = record(client, query);
    await waitUntil('the fourth subscription', () => server.app.services.events.size() > live);
    await createRun(server, { project });
    await fourth.waitFor(1);
    second.dispose();
    fourth.dispose();
  });
});

async function createToken(on: TestServer, role: string): Promise<{ id: string; token: string }> {
  const response = await on.gql<{
    createApiToken: { token: string; apiToken: { id: string } };
  }>(
    `mutation($input: CreateApiTokenInput!) { createApiToken(input: $input) { token apiToken { id } } }`,
    { input: { name: uniqueProject(role), role } },
  );
  const { token, apiToken } = dataOf(response).createApiToken;
  return { id: apiToken.id, token };
}

describe('subscriptions per token', () => {
  it('count WebSocket and SSE together on an instance; other tokens are unaffected', async () => {
    const reader = await createToken(server, 'READ');
    const as = { token: reader.token };
    const query = `subscription { statusChanged { runId } }`;
    const [c1, c2] = [server.wsClient(as), server.wsClient(as)];
    const open = [record(c1, query), record(c1, query), record(c2, query)];
    await waitUntil(
      'three subscriptions',
      () => server.app.services.subscriptionQuota.count(reader.id) === 3,
    );

    const fourth = record(server.wsClient(as), query);
    await fourth.ended;
    expect(fourth.results[0]?.errors?.[0]?.extensions).toMatchObject({
      code: 'LIMIT_EXCEEDED',
      limit: 'subscriptionsPerToken',
      max: 3,
    });
    const sse = await fetch(server.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'text/event-stream',
        authorization: `Bearer ${reader.token}`,
      },
      body: JSON.stringify({ query }),
    });
    expect(await sse.text()).toContain('subscriptionsPerToken');

    // Another token still subscribes.
    const live = server.app.services.events.size();
    const other = record(server.wsClient(), query);
    const project = uniqueProject('quota');
    await waitUntil('the other subscription', () => server.app.services.events.size() > live);
    await createRun(server, { project });
    await other.waitFor(1);

    // Ending one frees its slot.
    const withOpen = server.app.services.events.size();
    open[0]!.dispose();
    await waitUntil(
      'the slot to be freed',
      () =>
        server.app.services.subscriptionQuota.count(reader.id) === 2 &&
        server.app.services.events.size() < withOpen,
    );
    const freed = server.app.services.events.size();
    const again = record(c2, query);
    await waitUntil('the new subscription', () => server.app.services.events.size() > freed);
    await createRun(server, { project });
    await again.waitFor(1);
    for (const sub of [...open, other, again]) sub.dispose();
  });
});

describe('mutation rate per token', () => {
  let limited: TestServer;
  beforeAll(async () => {
    limited = await startServer({ limits: { mutationsPerSecond: 2, mutationBurst: 3 } });
  });
  afterAll(async () => {
    await limited.stop();
  });

  it('answers RATE_LIMITED (429, retryAfter) past the burst, writes nothing then, and recovers', async () => {
    const writer = await createToken(limited, 'WRITE');
    const as = { token: writer.token };
    const run = await createRun(limited, { project: uniqueProject('rate') });
    const report = (progress: number, token = as) =>
      limited.gql<{ reportProgress: { progress: number } }>(
        `mutation($id: ID!, $p: Float!) { reportProgress(input: { id: $id, progress: $p }) { progress } }`,
        { id: run.id, p: progress },
        token,
      );
    const answers = [];
    for (const progress of [0.1, 0.2, 0.3, 0.4, 0.5]) answers.push(await report(progress));
    expect(answers.slice(0, 3).map((a) => dataOf(a).reportProgress.progress)).toEqual([
      0.1, 0.2, 0.3,
    ]);
    const refused = answers[3]!;
    expect(refused.status).toBe(429);
    expect(refused.errors?.[0]?.extensions).toMatchObject({ code: 'RATE_LIMITED', retryAfter: 1 });
    const progressNow = await limited.gql<{ run: { progress: number } }>(
      `query($id: ID!) { run(id: $id) { progress } }`,
      { id: run.id },
    );
    expect(dataOf(progressNow).run.progress).toBe(0.3);

    // Another token has its own budget.
    expect(dataOf(await report(0.6, { token: undefined as never })).reportProgress.progress).toBe(
      0.6,
    );
    // And this one gets more after retryAfter.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(dataOf(await report(0.7)).reportProgress.progress).toBe(0.7);
  });
});
