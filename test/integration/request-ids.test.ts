import { expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { captureLogs, useServerWithoutTable } from '../support/broken-database.js';
import { waitUntil } from '../support/operations.js';
import { TEST_ADMIN_TOKEN } from '../support/server.js';

// A line the service logs about a request names it: an unexpected error (a bug, answered
// "Unexpected error.") is logged under the X-Request-Id the answer echoes, over each transport,
// and concurrent requests never borrow each other's id. The fault: the runs table is renamed
// away in this file's own database, so reading runs fails with an error nothing expects.

interface LogLine {
  level: number;
  msg: string;
  requestId?: string;
}
const { logger, errorLines } = captureLogs<LogLine>();
const RUNS = '{ runs(first: 1) { edges { node { id } } } }';
const server = useServerWithoutTable('request_ids', 'runs', logger);

async function post(requestId: string, init: RequestInit & { path?: string } = {}) {
  const response = await fetch(
    `${server.url.replace(/\/graphql$/, '')}${init.path ?? '/graphql'}`,
    {
      method: 'POST',
      ...init,
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${TEST_ADMIN_TOKEN}`,
        'x-request-id': requestId,
        ...(init.headers as Record<string, string> | undefined),
      },
      body: init.method === 'GET' ? undefined : (init.body ?? JSON.stringify({ query: RUNS })),
    },
  );
  expect(response.headers.get('x-request-id')).toBe(requestId);
  return (await response.json()) as { errors?: { message: string }[] };
}

it('logs an unexpected error under the id of the HTTP request that met it', async () => {
  const answer = await post('ids-post-1');
  expect(answer.errors?.[0]?.message).toBe('Unexpected error.');
  await waitUntil('its log line', () => errorLines().some((l) => l.requestId === 'ids-post-1'));
  // Through yoga's own adapter too (a GET), not only the plain JSON POST path.
  const viaGet = await post('ids-get-1', {
    method: 'GET',
    path: `/graphql?query=${encodeURIComponent(RUNS)}`,
    headers: { accept: 'application/json' },
  });
  expect(viaGet.errors?.[0]?.message).toBe('Unexpected error.');
  await waitUntil('its log line', () => errorLines().some((l) => l.requestId === 'ids-get-1'));
});

it('keeps the ids of concurrent requests apart', async () => {
  const ids = Array.from({ length: 16 }, (_, i) => `ids-concurrent-${i}`);
  const before = errorLines().length;
  const answers = await Promise.all(ids.map((id) => post(id)));
  expect(answers.every((a) => a.errors?.[0]?.message === 'Unexpected error.')).toBe(true);
  await waitUntil('a line per request', () => errorLines().length >= before + ids.length);
  const logged = errorLines()
    .slice(before)
    .map((l) => l.requestId)
    .sort();
  expect(logged).toEqual([...ids].sort());
});

it('logs a WebSocket operation under its connection id and its number on the connection', async () => {
  const socket = new WebSocket(server.wsUrl, 'graphql-transport-ws', {
    headers: { 'x-request-id': 'ids-socket' },
  });
  const messages: { type: string; id?: string }[] = [];
  socket.on('message', (data) => messages.push(JSON.parse(String(data))));
  await new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  socket.send(JSON.stringify({ type: 'connection_init', payload: { token: TEST_ADMIN_TOKEN } }));
  await waitUntil('connection_ack', () => messages.some((m) => m.type === 'connection_ack'));
  for (const id of ['a', 'b']) {
    socket.send(JSON.stringify({ id, type: 'subscribe', payload: { query: RUNS } }));
    await waitUntil(`operation ${id} to end`, () =>
      messages.some((m) => m.id === id && m.type === 'complete'),
    );
  }
  await waitUntil('both lines', () =>
    ['ids-socket/1', 'ids-socket/2'].every((id) => errorLines().some((l) => l.requestId === id)),
  );
  socket.close();
});
