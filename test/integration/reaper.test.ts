import { expect, it } from 'vitest';
import { createRun, getHistory, statusOf, transitionRun } from '../support/operations.js';
import { uniqueProject, type TestServer, useServers } from '../support/server.js';

// The reaper runs inside every instance. Two instances reap the same database every 50 ms with
// one-second deadlines; every decision must still be taken exactly once.

const [a, b] = useServers(2, { reaperIntervalMs: 50, stopTimeoutSeconds: 1 }) as [
  TestServer,
  TestServer,
];

it('takes each timeout decision exactly once, with its reason, across two instances', async () => {
  const project = uniqueProject();
  const silent = await createRun(a, { project, heartbeatTimeout: 1 });
  const waiting = await createRun(a, { project, queueTimeout: 1 });
  const stopping = await createRun(a, { project });
  const alive = await createRun(a, { project, heartbeatTimeout: 1 });
  await transitionRun(a, { id: silent.id, to: 'RUNNING' });
  await transitionRun(a, { id: waiting.id, to: 'QUEUED' });
  await transitionRun(a, { id: stopping.id, to: 'RUNNING' });
  await transitionRun(a, { id: stopping.id, to: 'STOPPING' });
  await transitionRun(a, { id: alive.id, to: 'RUNNING' });

  // `alive` keeps beating (on either instance) while the others go quiet, until it is checked.
  let beating = true;
  const beater = (async () => {
    for (let i = 0; beating; i++) {
      await (i % 2 ? a : b).gql(`mutation($id: ID!) { heartbeat(id: $id) { id } }`, {
        id: alive.id,
      });
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  })();
  const deadline = Date.now() + 8000;
  while (Date.now() < deadline) {
    const now = await Promise.all([silent, waiting, stopping].map((r) => statusOf(a, r.id)));
    if (now.join() === 'UNKNOWN,FAILED,STOPPED') break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  // Give a duplicate decision the chance to show.
  await new Promise((resolve) => setTimeout(resolve, 300));

  expect((await getHistory(a, silent.id)).slice(2)).toEqual([
    { from: 'RUNNING', to: 'UNKNOWN', version: 3, reason: 'HEARTBEAT_TIMEOUT', message: null },
  ]);
  expect((await getHistory(a, waiting.id)).slice(2)).toEqual([
    { from: 'QUEUED', to: 'FAILED', version: 3, reason: 'QUEUE_TIMEOUT', message: null },
  ]);
  expect((await getHistory(a, stopping.id)).slice(3)).toEqual([
    { from: 'STOPPING', to: 'STOPPED', version: 4, reason: 'STOP_TIMEOUT', message: null },
  ]);
  expect(await statusOf(a, alive.id)).toBe('RUNNING');
  beating = false;
  await beater;

  // A false alarm never destroys a real result: a late SUCCEEDED is accepted.
  expect(await transitionRun(b, { id: silent.id, to: 'SUCCEEDED' })).toMatchObject({
    __typename: 'TransitionAccepted',
    run: { status: 'SUCCEEDED' },
  });
}, 20_000);

it('a queue timeout with retries left retries instead of failing', async () => {
  const run = await createRun(a, { project: uniqueProject(), queueTimeout: 1, maxRetries: 1 });
  await transitionRun(a, { id: run.id, to: 'QUEUED' });
  const deadline = Date.now() + 8000;
  while ((await statusOf(a, run.id)) === 'QUEUED' && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  expect((await getHistory(a, run.id)).slice(2).map((h) => [h.to, h.reason])).toEqual([
    ['FAILED', 'QUEUE_TIMEOUT'],
    ['RETRYING', 'RETRY'],
  ]);
}, 20_000);

it('refuses timeouts that are not whole positive seconds', async () => {
  const response = await a.gql(
    `mutation { createRun(input: { project: "x", heartbeatTimeout: 0 }) { id } }`,
  );
  expect(response.errors?.[0]?.extensions).toMatchObject({
    code: 'BAD_USER_INPUT',
    field: 'input.heartbeatTimeout',
  });
});
