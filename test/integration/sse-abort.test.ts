import { expect, it } from 'vitest';
import { createRun, sleep, waitUntil } from '../support/operations.js';
import { authHeader, useServer, uniqueProject } from '../support/server.js';

// An SSE client that goes away while its subscription is still being set up must not leave a
// subscriber behind on the server.

const server = useServer();

it('aborted SSE subscriptions leave nothing registered', async () => {
  const run = await createRun(server, { project: uniqueProject() });
  const baseline = server.app.services.events.size();
  const queries = [
    `subscription { runUpdated(id: "${run.id}") { status } }`,
    `subscription { measurementRecorded(runId: "${run.id}") { value } }`,
    `subscription { statusChanged(filter: { runIds: ["${run.id}"] }) { to } }`,
  ];
  await Promise.all(
    Array.from({ length: 150 }, async (_, i) => {
      const controller = new AbortController();
      const response = fetch(server.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'text/event-stream',
          ...authHeader(),
        },
        body: JSON.stringify({ query: queries[i % queries.length] }),
        signal: controller.signal,
      }).catch(() => null);
      await sleep(i % 4); // abort at different points of the start-up
      controller.abort();
      await response;
    }),
  );
  await waitUntil(
    'every aborted subscription freed',
    () => server.app.services.events.size() === baseline,
    5000,
  );
  expect(server.app.services.events.size()).toBe(baseline);
});
