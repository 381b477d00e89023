import { expect, it } from 'vitest';
import { captureLogs, useServerWithoutTable } from '../support/broken-database.js';
import { createRun, transitionRun, waitUntil } from '../support/operations.js';
import { uniqueProject } from '../support/server.js';

// An unexpected error inside a subscription's event (a bug: here the measurements table is
// renamed away in this file's own database, so a run's latest measurements cannot be read) is
// answered "Unexpected error." to every subscriber, with no SQL, and logged once per event, not
// once per subscriber: the subscribers asking the same thing share one execution of it.

const { logger, errorLines } = captureLogs<{
  level: number;
  msg: string;
  err?: { message?: string };
}>();
const server = useServerWithoutTable('subscription_errors', 'measurements', logger);

it('masks an event’s unexpected error for every WebSocket subscriber and logs it once', async () => {
  const project = uniqueProject('sub-errors');
  const query = `subscription($p: String!) {
    statusChanged(filter: { projects: [$p] }) { to run { latestMeasurements { name } } }
  }`;
  const SUBSCRIBERS = 4;
  const received: { errors?: { message: string }[] }[][] = [];
  const ready: Promise<void>[] = [];
  for (let i = 0; i < SUBSCRIBERS; i++) {
    const answers: { errors?: { message: string }[] }[] = [];
    received.push(answers);
    const client = server.wsClient();
    ready.push(new Promise((resolve) => client.on('connected', () => resolve())));
    client.subscribe(
      { query, variables: { p: project } },
      { next: (answer) => void answers.push(answer as never), error: () => {}, complete: () => {} },
    );
  }
  await Promise.all(ready);
  // Their subscriptions start once connected: give them a moment to be live.
  await new Promise((resolve) => setTimeout(resolve, 300));

  const before = errorLines().length;
  const run = await createRun(server, { project });
  await waitUntil('the creation at every subscriber', () => received.every((a) => a.length >= 1));
  await transitionRun(server, { id: run.id, to: 'RUNNING' });
  await waitUntil('the change at every subscriber', () => received.every((a) => a.length >= 2));

  for (const answers of received) {
    for (const answer of answers) {
      expect(answer.errors?.map((e) => e.message)).toEqual(['Unexpected error.']);
      expect(JSON.stringify(answer)).not.toMatch(/measurements|relation|SELECT/);
    }
  }
  // Two events, each executed once for the four subscribers: two lines, naming the cause.
  const logged = errorLines().slice(before);
  expect(logged).toHaveLength(2);
  for (const line of logged) expect(line.err?.message).toMatch(/measurements/);
});
