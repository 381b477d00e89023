import { describe, expect, it } from 'vitest';
import { TEST_ADMIN_TOKEN, useServer } from '../support/server.js';

/**
 * A plain JSON POST is answered by server/graphql-post.ts, not through yoga's Fetch API adapter:
 * every answer a client can see (status, media type, the headers yoga sets, the body) must be the
 * one yoga itself gives for the same request, sent here to yoga in-process.
 */
const server = useServer();

const AUTH = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` };
const JSON_BODY = { 'content-type': 'application/json' };

/** Set by Node's HTTP server (framing) and http.ts for every request, not by yoga. */
const TRANSPORT_HEADERS = new Set([
  'date',
  'connection',
  'keep-alive',
  'transfer-encoding',
  'x-request-id',
]);

async function seen(response: Response) {
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    if (!TRANSPORT_HEADERS.has(name.toLowerCase())) headers[name.toLowerCase()] = value;
  });
  return { status: response.status, headers, body: await response.text() };
}

/** The answer over HTTP, and yoga's own answer to the same request. */
async function bothWays(body: string, headers: Record<string, string>) {
  const init = { method: 'POST', headers: { ...JSON_BODY, ...headers }, body };
  const overHttp = await seen(await fetch(server.url, init));
  const byYoga = await seen(await server.app.yoga.fetch(server.url, init));
  return { overHttp, byYoga };
}

const params = (query: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ query, ...extra });

const CASES: { name: string; body: string; headers?: Record<string, string>; status: number }[] = [
  { name: 'a query', body: params('{ __typename }'), status: 200 },
  {
    name: 'a query asking for graphql-response+json',
    body: params('{ __typename }'),
    headers: { accept: 'application/graphql-response+json' },
    status: 200,
  },
  {
    name: 'a query accepting both media types, as Apollo Client sends',
    body: params('{ __typename }'),
    headers: { accept: 'application/graphql-response+json,application/json;q=0.9' },
    status: 200,
  },
  {
    name: 'a page of runs with variables',
    body: params(
      'query($p: String) { runs(first: 2, filter: { project: $p }) { edges { cursor } } }',
      {
        variables: { p: 'graphql-post-none' },
      },
    ),
    status: 200,
  },
  { name: 'an unknown field', body: params('{ nope }'), status: 200 },
  {
    name: 'an unknown field, graphql-response+json',
    body: params('{ nope }'),
    headers: { accept: 'application/graphql-response+json' },
    status: 400,
  },
  { name: 'a syntax error', body: params('{ runs('), status: 200 },
  { name: 'a resolver refusing input', body: params('{ run(id: "x") { id } }'), status: 200 },
  {
    name: 'variables that do not coerce',
    body: params('query($n: Int) { runs(first: $n) { edges { cursor } } }', {
      variables: { n: 'many' },
    }),
    status: 400,
  },
  {
    name: 'a named operation of two',
    body: params('query A { __typename } query B { viewer { name } }', { operationName: 'B' }),
    status: 200,
  },
  {
    name: 'two operations and no name',
    body: params('query A { __typename } query B { __typename }'),
    status: 400,
  },
  {
    name: 'a refused mutation',
    body: params(
      'mutation { transitionRun(input: { id: "00000000-0000-4000-8000-000000000000", to: RUNNING }) { __typename } }',
    ),
    status: 200,
  },
  { name: 'invalid JSON', body: '{"query": ', status: 400 },
  { name: 'a batch', body: JSON.stringify([{ query: '{ __typename }' }]), status: 400 },
  { name: 'an unknown param', body: params('{ __typename }', { persisted: true }), status: 400 },
  {
    name: 'variables that are not an object',
    body: params('{ __typename }', { variables: 'x' }),
    status: 400,
  },
  { name: 'no query', body: JSON.stringify({ variables: {} }), status: 200 },
  {
    name: 'a subscription, which a JSON answer cannot carry',
    body: params('subscription { statusChanged { runId } }'),
    headers: { accept: 'application/json' },
    status: 406,
  },
];

describe('a JSON POST answered without the Fetch API adapter', () => {
  for (const { name, body, headers = {}, status } of CASES) {
    it(`answers ${name} exactly as yoga does`, async () => {
      const { overHttp, byYoga } = await bothWays(body, { ...AUTH, ...headers });
      expect(overHttp.status).toBe(status);
      expect(overHttp).toEqual(byYoga);
    });
  }

  it('answers a request without a token as yoga does: 401 with WWW-Authenticate', async () => {
    const { overHttp, byYoga } = await bothWays(params('{ __typename }'), {});
    expect(overHttp.status).toBe(401);
    expect(overHttp.headers['www-authenticate']).toMatch(/^Bearer/);
    expect(overHttp).toEqual(byYoga);
  });

  it('streams a subscription to a POST that accepts any answer, as yoga does', async () => {
    const abort = new AbortController();
    const response = await fetch(server.url, {
      method: 'POST',
      headers: { ...JSON_BODY, ...AUTH },
      body: params('subscription { statusChanged { runId } }'),
      signal: abort.signal,
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    abort.abort();
  });

  it('answers concurrent requests each with its own result', async () => {
    const names = Array.from({ length: 20 }, (_, i) => `graphql-post-${i}`);
    const answers = await Promise.all(
      names.map((project) =>
        server.gql<{ createRun: { project: string } }>(
          'mutation($p: String!) { createRun(input: { project: $p }) { project } }',
          { p: project },
        ),
      ),
    );
    expect(answers.map((a) => a.data?.createRun.project)).toEqual(names);
  });
});
