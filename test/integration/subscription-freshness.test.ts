import { expect, it } from 'vitest';
import {
  createRun,
  dataOf,
  latestCursorOf,
  record,
  transitionRun,
  untilTailPast,
  waitUntil,
} from '../support/operations.js';
import { useServer, uniqueProject } from '../support/server.js';

// A subscription keeps one GraphQL context for its whole life: nested fields of every event must
// be read fresh, not from a loader cache filled by the first event.

const server = useServer();

const untilSubscribed = (before: number) =>
  waitUntil('the subscription', () => server.app.services.events.size() > before);

it('statusChanged { run } shows the run as of each event', async () => {
  const run = await createRun(server, { project: uniqueProject() });
  const before = server.app.services.events.size();
  const events = record<{
    statusChanged: { to: string; run: { status: string; version: number } };
  }>(
    server.wsClient(),
    `subscription($id: ID!) { statusChanged(filter: { runIds: [$id], statuses: [QUEUED, RUNNING] }) { to version run { status version } } }`,
    { id: run.id },
  );
  await untilSubscribed(before);
  await transitionRun(server, { id: run.id, to: 'QUEUED' });
  await events.waitFor(1);
  await transitionRun(server, { id: run.id, to: 'RUNNING' });
  const received = await events.waitFor(2);
  expect(received.map((e) => e.statusChanged)).toEqual([
    { to: 'QUEUED', version: 2, run: { status: 'QUEUED', version: 2 } },
    { to: 'RUNNING', version: 3, run: { status: 'RUNNING', version: 3 } },
  ]);
  events.dispose();
});

it('runUpdated { latestMeasurements } shows the newest points at each event', async () => {
  const run = await createRun(server, { project: uniqueProject() });
  // The creation is a runUpdated event too, published once the tail reads it: let that pass
  // before subscribing, so the first event here is the first point's.
  await untilTailPast(server, await latestCursorOf(server, run.id));
  const before = server.app.services.events.size();
  const updates = record<{ runUpdated: { latestMeasurements: { name: string; value: number }[] } }>(
    server.wsClient(),
    `subscription($id: ID!) { runUpdated(id: $id) { latestMeasurements { name value } } }`,
    { id: run.id },
  );
  await untilSubscribed(before);
  const recordPoint = async (value: number) =>
    dataOf(
      await server.gql(
        `mutation($id: ID!, $v: Float!) { recordMeasurements(input: { runId: $id, measurements: [{ name: "loss", value: $v }] }) }`,
        { id: run.id, v: value },
      ),
    );
  await recordPoint(0.9);
  await updates.waitFor(1);
  await recordPoint(0.5);
  const received = await updates.waitFor(2);
  expect(received.map((u) => u.runUpdated.latestMeasurements)).toEqual([
    [{ name: 'loss', value: 0.9 }],
    [{ name: 'loss', value: 0.5 }],
  ]);
  updates.dispose();
});
