import type { Socket } from 'node:net';
import { expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { createRun, dataOf, RESULT_FIELDS, waitUntil } from '../support/operations.js';
import { useServer, TEST_ADMIN_TOKEN, uniqueProject } from '../support/server.js';

// A subscriber that stops reading must not grow server memory without bound: its buffer is
// bounded, and when it overflows that subscription is closed with a reason the client can act
// on (resubscribe from its cursor). The connection and its other subscriptions live on.

const BUFFER = 20;
const server = useServer({ subscriberBufferSize: BUFFER });

interface Message {
  type: string;
  id?: string;
  payload?: { data?: unknown; errors?: { message: string; extensions?: { code?: string } }[] };
}

/** A graphql-transport-ws client by hand, so the test can stop reading from its TCP socket. */
async function connect(url: string) {
  const socket = new WebSocket(url, 'graphql-transport-ws');
  const messages: Message[] = [];
  socket.on('message', (data) => messages.push(JSON.parse(String(data)) as Message));
  await new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  socket.send(JSON.stringify({ type: 'connection_init', payload: { token: TEST_ADMIN_TOKEN } }));
  await waitUntil('connection_ack', () => messages.some((m) => m.type === 'connection_ack'));
  return {
    socket,
    messages,
    tcp: (socket as unknown as { _socket: Socket })._socket,
    subscribe(id: string, query: string) {
      socket.send(JSON.stringify({ id, type: 'subscribe', payload: { query } }));
    },
  };
}

it('closes an overflowing subscription with SUBSCRIPTION_OVERFLOW and keeps the connection', async () => {
  const project = uniqueProject();
  const runs = await Promise.all(Array.from({ length: 50 }, () => createRun(server, { project })));
  const client = await connect(server.wsUrl);
  const hubBefore = server.app.services.events.size();
  client.subscribe(
    '1',
    `subscription { statusChanged(filter: { projects: ["${project}"] }) { cursor runId to message } }`,
  );
  await waitUntil('the subscription', () => server.app.services.events.size() === hubBefore + 1);

  // Stop reading. Large events fill the kernel's socket buffers, then the server's bounded one.
  client.tcp.pause();
  const message = 'x'.repeat(10_000);
  for (let round = 0; round < 30 && server.app.services.events.size() > hubBefore; round++) {
    const to = round % 2 === 0 ? 'RUNNING' : 'PROCESSING';
    const result = dataOf(
      await server.gql<{ transitionRuns: { __typename: string }[] }>(
        `mutation($inputs: [TransitionRunInput!]!) { transitionRuns(inputs: $inputs) { ${RESULT_FIELDS} } }`,
        { inputs: runs.map((r) => ({ id: r.id, to, message })) },
      ),
    );
    expect(result.transitionRuns.every((r) => r.__typename === 'TransitionAccepted')).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  // The server dropped the subscription: nothing more is kept for it.
  await waitUntil(
    'the overflowing subscription to be dropped',
    () => server.app.services.events.size() === hubBefore,
    30_000,
  );

  client.tcp.resume();
  await waitUntil(
    'complete',
    () => client.messages.some((m) => m.id === '1' && m.type === 'complete'),
    30_000,
  );
  const mine = client.messages.filter((m) => m.id === '1');
  const errors = mine.filter((m) => m.type === 'next' && m.payload?.errors);
  expect(errors).toHaveLength(1);
  expect(errors[0]!.payload!.errors![0]!.extensions?.code).toBe('SUBSCRIPTION_OVERFLOW');
  expect(errors[0]!.payload!.errors![0]!.message).toContain('after');
  // Events before the error were delivered normally, and nothing after it.
  const errorAt = mine.indexOf(errors[0]!);
  expect(mine.slice(0, errorAt).every((m) => m.type === 'next' && m.payload?.data)).toBe(true);
  expect(mine.slice(errorAt + 1).map((m) => m.type)).toEqual(['complete']);

  // The same connection still works.
  client.subscribe('2', `subscription { runUpdated(id: "${runs[0]!.id}") { status } }`);
  await waitUntil(
    'the second subscription',
    () => server.app.services.events.size() === hubBefore + 1,
  );
  await server.gql(`mutation($id: ID!) { heartbeat(id: $id) { id } }`, { id: runs[0]!.id });
  await waitUntil('an event on it', () =>
    client.messages.some((m) => m.id === '2' && m.type === 'next'),
  );
  client.socket.close();
}, 60_000);
