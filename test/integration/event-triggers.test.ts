import { describe, expect, it } from 'vitest';
import {
  createRun,
  dataOf,
  getHistory,
  RESULT_FIELDS,
  transitionRun,
} from '../support/operations.js';
import { useServer, uniqueProject } from '../support/server.js';

// orchestration.md, event triggers (Polyaxon's): start a run when another one emitted an event.

const server = useServer();

async function run(id: string) {
  return dataOf(
    await server.gql<{ run: { status: string; blockedReason: string | null; isReady: boolean } }>(
      `query($id: ID!) { run(id: $id) { status blockedReason isReady } }`,
      { id },
    ),
  ).run;
}

describe('event triggers', () => {
  it('a run is QUEUED in the transaction of its ref starting to run', async () => {
    const project = uniqueProject();
    const training = await createRun(server, { project, name: 'training' });
    const board = await createRun(server, {
      project,
      name: 'tensorboard',
      events: [{ ref: training.id, kinds: ['RUN_STATUS_RUNNING'] }],
    });
    expect(await run(board.id)).toMatchObject({ status: 'CREATED', isReady: false });
    expect((await run(board.id)).blockedReason).toContain(training.id);
    await transitionRun(server, { id: training.id, to: 'QUEUED' });
    expect((await run(board.id)).status).toBe('CREATED');
    await transitionRun(server, { id: training.id, to: 'RUNNING' });
    expect(await run(board.id)).toMatchObject({
      status: 'QUEUED',
      isReady: true,
      blockedReason: null,
    });
    expect((await getHistory(server, board.id)).at(-1)).toMatchObject({
      to: 'QUEUED',
      reason: 'EVENT_TRIGGERED',
    });
  });

  it('RUN_STATUS_DONE matches every DONE status', async () => {
    for (const end of ['SUCCEEDED', 'FAILED', 'STOPPED', 'SKIPPED', 'UPSTREAM_FAILED']) {
      const project = uniqueProject();
      const ref = await createRun(server, { project });
      const watcher = await createRun(server, {
        project,
        events: [{ ref: ref.id, kinds: ['RUN_STATUS_DONE'] }],
      });
      if (end === 'SUCCEEDED' || end === 'FAILED')
        await transitionRun(server, { id: ref.id, to: 'RUNNING' });
      await transitionRun(server, { id: ref.id, to: end });
      expect((await run(watcher.id)).status, end).toBe('QUEUED');
    }
  });

  it('an event that can no longer happen fails the run upstream, naming the ref', async () => {
    const project = uniqueProject();
    const ref = await createRun(server, { project, name: 'job' });
    const onFailure = await createRun(server, {
      project,
      events: [{ ref: ref.id, kinds: ['RUN_STATUS_FAILED'] }],
    });
    await transitionRun(server, { id: ref.id, to: 'RUNNING' });
    await transitionRun(server, { id: ref.id, to: 'SUCCEEDED' });
    const state = await run(onFailure.id);
    expect(state.status).toBe('UPSTREAM_FAILED');
    expect(state.blockedReason).toContain(ref.id);
    expect(state.blockedReason).toContain('RUN_STATUS_FAILED');
  });

  // Issue 15, defect 1: FAILED and STOPPED are done but not final; RESUMING and RETRYING may
  // still come, so a run watching for them waits instead of failing upstream.
  it('a watcher of RESUMING or RETRYING waits while its ref is FAILED or STOPPED, and starts when it happens', async () => {
    const project = uniqueProject();
    const ref = await createRun(server, { project, name: 'job' });
    const onResume = await createRun(server, {
      project,
      events: [{ ref: ref.id, kinds: ['RUN_STATUS_RESUMING'] }],
    });
    const onRetry = await createRun(server, {
      project,
      events: [{ ref: ref.id, kinds: ['RUN_STATUS_RETRYING'] }],
    });
    await transitionRun(server, { id: ref.id, to: 'RUNNING' });
    await transitionRun(server, { id: ref.id, to: 'STOPPED' });
    // STOPPED -> RESUMING, and later (RESUMING -> ... -> FAILED -> RETRYING) a retry, can still happen.
    expect(await run(onResume.id)).toMatchObject({ status: 'CREATED', isReady: false });
    expect(await run(onRetry.id)).toMatchObject({ status: 'CREATED', isReady: false });
    await transitionRun(server, { id: ref.id, to: 'RESUMING' });
    expect((await run(onResume.id)).status).toBe('QUEUED');
    await transitionRun(server, { id: ref.id, to: 'RUNNING' });
    await transitionRun(server, { id: ref.id, to: 'FAILED' });
    expect((await run(onRetry.id)).status).toBe('CREATED');
    await transitionRun(server, { id: ref.id, to: 'RETRYING' });
    expect((await run(onRetry.id)).status).toBe('QUEUED');
    expect((await getHistory(server, onRetry.id)).map((c) => c.to)).toEqual(['CREATED', 'QUEUED']);

    // A final status ends the wait: SUCCEEDED can never be resumed or retried.
    const other = await createRun(server, { project });
    const never = await createRun(server, {
      project,
      events: [{ ref: other.id, kinds: ['RUN_STATUS_RETRYING'] }],
    });
    await transitionRun(server, { id: other.id, to: 'RUNNING' });
    await transitionRun(server, { id: other.id, to: 'FAILED' });
    expect((await run(never.id)).status).toBe('CREATED');
    await transitionRun(server, { id: other.id, to: 'RESUMING' });
    await transitionRun(server, { id: other.id, to: 'RUNNING' });
    await transitionRun(server, { id: other.id, to: 'SUCCEEDED' });
    const failed = await run(never.id);
    expect(failed.status).toBe('UPSTREAM_FAILED');
    expect(failed.blockedReason).toContain('RUN_STATUS_RETRYING');
  });

  it('an event emitted before the run was created counts; an event inside the same batch too', async () => {
    const project = uniqueProject();
    const ref = await createRun(server, { project });
    await transitionRun(server, { id: ref.id, to: 'RUNNING' });
    const late = await createRun(server, {
      project,
      events: [{ ref: ref.id, kinds: ['RUN_STATUS_RUNNING'] }],
    });
    expect(late.status).toBe('QUEUED');

    const other = await createRun(server, { project });
    const watcher = await createRun(server, {
      project,
      events: [{ ref: other.id, kinds: ['RUN_STATUS_QUEUED'] }],
    });
    const batch = dataOf(
      await server.gql<{ transitionRuns: { __typename: string }[] }>(
        `mutation($inputs: [TransitionRunInput!]!) { transitionRuns(inputs: $inputs) { ${RESULT_FIELDS} } }`,
        {
          inputs: [
            { id: other.id, to: 'QUEUED' },
            { id: other.id, to: 'RUNNING' },
          ],
        },
      ),
    );
    expect(batch.transitionRuns.map((r) => r.__typename)).toEqual([
      'TransitionAccepted',
      'TransitionAccepted',
    ]);
    expect((await run(watcher.id)).status).toBe('QUEUED');
  });

  it('decisions chain: a run queued by its upstreams is an event for its watchers, in one transaction', async () => {
    const project = uniqueProject();
    const up = await createRun(server, { project });
    const down = await createRun(server, { project, dependsOn: [up.id] });
    const watcher = await createRun(server, {
      project,
      events: [{ ref: down.id, kinds: ['RUN_STATUS_QUEUED'] }],
    });
    await transitionRun(server, { id: up.id, to: 'RUNNING' });
    await transitionRun(server, { id: up.id, to: 'SUCCEEDED' });
    expect([(await run(down.id)).status, (await run(watcher.id)).status]).toEqual([
      'QUEUED',
      'QUEUED',
    ]);
  });

  it('refuses an unknown ref and an empty kinds list', async () => {
    const unknown = await server.gql(
      `mutation { createRun(input: { project: "x", events: [{ ref: "00000000-0000-4000-8000-00000000beef", kinds: [RUN_STATUS_RUNNING] }] }) { id } }`,
    );
    expect(unknown.errors?.[0]?.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'input.events[0].ref',
    });
    const ref = await createRun(server, { project: uniqueProject() });
    const empty = await server.gql(
      `mutation($id: ID!) { createRun(input: { project: "x", events: [{ ref: $id, kinds: [] }] }) { id } }`,
      { id: ref.id },
    );
    expect(empty.errors?.[0]?.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'input.events[0].kinds',
    });
  });
});

describe('Polyaxon: a DAG with trigger policies and an event trigger', () => {
  it('prepare -> train -> evaluate / cleanup, with a tensorboard next to training', async () => {
    const project = uniqueProject('polyaxon');
    const prepare = await createRun(server, { project, name: 'prepare' });
    const train = await createRun(server, { project, name: 'train', dependsOn: [prepare.id] });
    const board = await createRun(server, {
      project,
      name: 'tensorboard',
      events: [{ ref: train.id, kinds: ['RUN_STATUS_RUNNING'] }],
    });
    const evaluate = await createRun(server, { project, name: 'evaluate', dependsOn: [train.id] });
    const cleanup = await createRun(server, {
      project,
      name: 'cleanup',
      dependsOn: [train.id],
      trigger: 'ALL_DONE',
    });
    const notify = await createRun(server, {
      project,
      name: 'notify',
      dependsOn: [evaluate.id],
      trigger: 'ONE_FAILED',
    });

    // Polyaxon's status path for prepare, then for train as the scheduler moves it.
    for (const to of ['COMPILED', 'QUEUED', 'SCHEDULED', 'STARTING', 'RUNNING', 'SUCCEEDED']) {
      await transitionRun(server, { id: prepare.id, to });
    }
    expect((await run(train.id)).status).toBe('QUEUED');
    for (const to of ['SCHEDULED', 'STARTING', 'RUNNING'])
      await transitionRun(server, { id: train.id, to });
    expect((await run(board.id)).status).toBe('QUEUED');
    await transitionRun(server, { id: train.id, to: 'FAILED', message: 'diverged' });
    // evaluate can never start; notify (ONE_FAILED over evaluate) counts that failure; cleanup runs anyway.
    expect([evaluate, notify, cleanup].length).toBe(3);
    expect((await run(evaluate.id)).status).toBe('UPSTREAM_FAILED');
    expect((await run(notify.id)).status).toBe('QUEUED');
    expect((await run(cleanup.id)).status).toBe('QUEUED');
  });
});
