import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import {
  startServer,
  TEST_ADMIN_TOKEN,
  uniqueProject,
  type TestServer,
} from '../support/server.js';

// A web page on another origin can neither write nor read (CSRF and CORS), with API tokens off
// (where it matters most) and on; and a WebSocket message is capped before it is parsed.

const EVIL = 'http://evil.example';
const FRIEND = 'http://ops.example:8080';

/** How many runs a project has, asked as the admin. */
async function runsOf(server: TestServer, project: string): Promise<number> {
  const reply = await server.gql<{ runs: { edges: unknown[] } }>(
    `query($p: String!) { runs(filter: { project: $p }, first: 10) { edges { node { id } } } }`,
    { p: project },
  );
  return reply.data!.runs.edges.length;
}

/** Open a WebSocket with the given Origin (or none); answers how it ended up. */
function openSocket(url: string, origin?: string): Promise<'open' | number> {
  return new Promise((resolve) => {
    const socket = new WebSocket(url, 'graphql-transport-ws', origin ? { origin } : {});
    socket.once('open', () => {
      socket.close();
      resolve('open');
    });
    socket.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      socket.terminate();
    });
    socket.once('error', () => {});
  });
}

for (const authEnabled of [false, true]) {
  describe(`cross-site requests with RUNSTATE_AUTH=${authEnabled ? 'on' : 'off'}`, () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startServer({ authEnabled, corsOrigins: [FRIEND] });
    });
    afterAll(() => server.stop());
    const auth = (): Record<string, string> =>
      authEnabled ? { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } : {};

    it('a form POST from another origin writes nothing (415)', async () => {
      const project = uniqueProject('csrf');
      const query = `mutation { createRun(input: { project: "${project}" }) { id } }`;
      const form = new URLSearchParams({ query }).toString();
      const cases: [Record<string, string>, string | Blob][] = [
        [{ 'content-type': 'application/x-www-form-urlencoded' }, form],
        [{}, new Blob([form])], // a Blob without a type: no content type at all
      ];
      // yoga also answers GraphQL under paths that end in the GraphQL path.
      const { origin } = new URL(server.url);
      const urls = [server.url, `${server.url}/`, `${origin}//graphql`];
      for (const [[headers, sent], url] of cases.flatMap((c) => urls.map((u) => [c, u] as const))) {
        const response = await fetch(url, {
          method: 'POST',
          headers: { origin: EVIL, ...auth(), ...headers },
          body: sent,
        });
        expect(response.status).toBe(415);
        const answer = (await response.json()) as { errors: { extensions: { code: string } }[] };
        expect(answer.errors[0]!.extensions.code).toBe('BAD_REQUEST');
      }
      // GET never mutates.
      const get = await fetch(`${server.url}?query=${encodeURIComponent(query)}`, {
        headers: { origin: EVIL, ...auth() },
      });
      expect(get.status).toBe(405);
      expect(await runsOf(server, project)).toBe(0);
    });

    it('CORS answers only a configured origin', async () => {
      const preflight = (origin: string) =>
        fetch(server.url, {
          method: 'OPTIONS',
          headers: {
            origin,
            'access-control-request-method': 'POST',
            'access-control-request-headers': 'content-type, authorization',
          },
        });
      const evil = await preflight(EVIL);
      expect(evil.headers.get('access-control-allow-origin')).toBeNull();
      const friend = await preflight(FRIEND);
      expect(friend.headers.get('access-control-allow-origin')).toBe(FRIEND);
      expect(friend.headers.get('access-control-allow-credentials')).toBeNull();

      const read = (origin: string) =>
        fetch(server.url, {
          method: 'POST',
          headers: { origin, 'content-type': 'application/json', ...auth() },
          body: JSON.stringify({ query: '{ lifecycle { statuses { status } } }' }),
        });
      expect((await read(EVIL)).headers.get('access-control-allow-origin')).toBeNull();
      expect((await read(FRIEND)).headers.get('access-control-allow-origin')).toBe(FRIEND);
    });

    it('a WebSocket from an origin not allowed is refused; same origin, a configured one and none are not', async () => {
      const own = new URL(server.url).origin;
      expect(await openSocket(server.wsUrl, EVIL)).toBe(403);
      expect(await openSocket(server.wsUrl, 'null')).toBe(403);
      expect(await openSocket(server.wsUrl, own)).toBe('open');
      expect(await openSocket(server.wsUrl, FRIEND)).toBe('open');
      expect(await openSocket(server.wsUrl)).toBe('open');
    });
  });
}

describe('WebSocket frames are capped before they are parsed', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ limits: { maxWsFrameBytes: 64 * 1024 } });
  });
  afterAll(() => server.stop());

  it('a connection_init larger than the cap closes the socket with 1009, and the server answers on', async () => {
    const socket = new WebSocket(server.wsUrl, 'graphql-transport-ws');
    await new Promise((resolve) => socket.once('open', resolve));
    const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
    const padding = 'x'.repeat(8 * 1024 * 1024);
    socket.send(JSON.stringify({ type: 'connection_init', payload: { padding } }));
    expect(await closed).toBe(1009);
    const health = await fetch(new URL('/health', server.url));
    expect(health.status).toBe(200);
  });

  it('a message under the cap is served as usual', async () => {
    const project = uniqueProject('frame');
    const client = server.wsClient();
    const result = await new Promise<unknown>((resolve, reject) => {
      client.subscribe(
        {
          query: `mutation($p: String!, $m: JSON) { createRun(input: { project: $p, meta: $m }) { project } }`,
          variables: { p: project, m: { note: 'y'.repeat(16 * 1024) } },
        },
        { next: resolve, error: reject, complete: () => {} },
      );
    });
    expect(result).toEqual({ data: { createRun: { project } } });
  });
});
