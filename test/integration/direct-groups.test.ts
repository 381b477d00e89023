import { expect, it } from 'vitest';
import { createRun, getHistory, transitionRun } from '../support/operations.js';
import { uniqueProject, useRecordingServer } from '../support/server.js';

// Group commit (runs/direct-group.ts): single changes that arrive together go as one statement.
// Each client still gets the answer it would get alone: a refused change in a burst refuses
// only itself, two changes to one run are ordered by its lock, and the history holds exactly
// the accepted changes, each run's versions in order.

const { server, statements } = useRecordingServer();

it('concurrent single changes are grouped, and each answers as it would alone', async () => {
  const project = uniqueProject('direct-groups');
  const runs = [];
  for (let i = 0; i < 12; i++) {
    const run = await createRun(server, { project, name: `r${i}` });
    await transitionRun(server, { id: run.id, to: 'RUNNING' });
    runs.push(run);
  }
  const [twice, illegal, stale, ...plain] = runs;
  let grouped = false;
  const status = new Map(runs.map((r) => [r.id, 'RUNNING']));
  // A burst sent at once is read in one turn of the server's event loop often, not always.
  for (let burst = 0; burst < 10 && !grouped; burst++) {
    statements.length = 0;
    const flip = (id: string) => (status.get(id) === 'RUNNING' ? 'PROCESSING' : 'RUNNING');
    const answers = await Promise.all([
      ...plain.map((r) => transitionRun(server, { id: r.id, to: flip(r.id) })),
      transitionRun(server, { id: illegal!.id, to: 'CREATED' }),
      transitionRun(server, { id: stale!.id, to: flip(stale!.id), expectedVersion: 1 }),
      transitionRun(server, { id: twice!.id, to: 'PROCESSING', reason: 'a' }),
      transitionRun(server, { id: twice!.id, to: 'PROCESSING', reason: 'b' }),
    ]);
    grouped = statements.some((s) => s.includes('/* transitionDirectBatch */'));
    const byPlain = answers.slice(0, plain.length);
    byPlain.forEach((answer, i) => {
      expect(answer).toMatchObject({
        __typename: 'TransitionAccepted',
        change: { to: flip(plain[i]!.id) },
      });
      status.set(plain[i]!.id, flip(plain[i]!.id));
    });
    const [toCreated, conflict, first, second] = answers.slice(plain.length);
    expect(toCreated).toMatchObject({ __typename: 'IllegalTransition', runId: illegal!.id });
    expect(conflict).toMatchObject({ __typename: 'TransitionConflict', runId: stale!.id });
    // Both ask for the status the run ends in: the first one the lock lets through moves it.
    const moved = [first, second].filter((a) => a!.__typename === 'TransitionAccepted');
    expect(moved.length).toBeGreaterThanOrEqual(1);
    expect(moved.filter((a) => (a as { change?: unknown }).change != null)).toHaveLength(
      burst === 0 ? 1 : 0,
    );
  }
  expect(grouped).toBe(true);
  for (const run of plain) {
    const history = await getHistory(server, run.id);
    expect(history.map((h) => h.version)).toEqual(history.map((_, i) => i + 1));
    expect(history.at(-1)!.to).toBe(status.get(run.id));
  }
  expect((await getHistory(server, illegal!.id)).map((h) => h.to)).toEqual(['CREATED', 'RUNNING']);
  expect((await getHistory(server, twice!.id)).map((h) => h.to)).toEqual([
    'CREATED',
    'RUNNING',
    'PROCESSING',
  ]);
});
