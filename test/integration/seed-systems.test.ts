import { describe, expect, it } from 'vitest';
import { createRun, dataOf, getHistory, transitionRun, statusOf } from '../support/operations.js';
import { useServer, uniqueProject } from '../support/server.js';

// lifecycle.md maps the vocabularies of the systems runstate serves; each test walks a typical
// job of one system through runstate in that system's terms.

const server = useServer();

async function mutate<T = Record<string, unknown>>(
  query: string,
  variables: Record<string, unknown>,
): Promise<T> {
  return dataOf(await server.gql<T>(query, variables));
}

describe('Parsl: pending, launched, running, exec_done, dep_fail, fail_retryable, memo_done', () => {
  it('a dependency failure, a retried task and a memoized task', async () => {
    const project = uniqueProject('parsl');
    // pending -> launched -> running -> exec_done, with one fail_retryable on the way.
    const train = await createRun(server, {
      project,
      name: 'train',
      maxRetries: 1,
      cacheKey: 'train@v1',
    });
    await transitionRun(server, { id: train.id, to: 'SCHEDULED' }); // launched
    await transitionRun(server, { id: train.id, to: 'RUNNING', attempt: 1 });
    const retried = await transitionRun(server, {
      id: train.id,
      to: 'FAILED',
      attempt: 1,
      message: 'worker lost',
    });
    expect(retried).toMatchObject({ change: { to: 'RETRYING', reason: 'RETRY' } }); // fail_retryable
    await transitionRun(server, { id: train.id, to: 'RUNNING', attempt: 2 });
    await transitionRun(server, { id: train.id, to: 'PROCESSING', attempt: 2 }); // running_ended
    await transitionRun(server, { id: train.id, to: 'SUCCEEDED', attempt: 2 }); // exec_done
    expect(await statusOf(server, train.id)).toBe('SUCCEEDED');

    // memo_done: the same app call again needs no executor.
    const again = await createRun(server, { project, name: 'train', cacheKey: 'train@v1' });
    expect(again.status).toBe('SKIPPED');
    const memo = await mutate<{ run: { memoizedFrom: { id: string }; stopMessage: string } }>(
      `query($id: ID!) { run(id: $id) { memoizedFrom { id } stopMessage } }`,
      { id: again.id },
    );
    expect(memo.run.memoizedFrom.id).toBe(train.id);
    expect((await getHistory(server, again.id)).at(-1)).toMatchObject({
      to: 'SKIPPED',
      reason: 'MEMOIZED',
    });
    // Another key, or another project, is not memoized.
    expect((await createRun(server, { project, cacheKey: 'train@v2' })).status).toBe('CREATED');
    expect(
      (await createRun(server, { project: uniqueProject(), cacheKey: 'train@v1' })).status,
    ).toBe('CREATED');

    // dep_fail: a task whose input failed for good never runs.
    const prep = await createRun(server, { project, name: 'prep' });
    const evaluate = await createRun(server, {
      project,
      name: 'evaluate',
      dependsOn: [prep.id, train.id],
    });
    await transitionRun(server, { id: prep.id, to: 'RUNNING' });
    await transitionRun(server, { id: prep.id, to: 'FAILED', message: 'bad input' });
    expect(await statusOf(server, evaluate.id)).toBe('UPSTREAM_FAILED');
  });
});

describe('Perceval: WAITING, RUNNING, SUCCESS, ERROR, CANCELED, SUSPENDED, CANCEL_REQUESTED', () => {
  it('progress with phases, a cancel request then canceled, suspend and resume', async () => {
    const project = uniqueProject('perceval');
    const job = await createRun(server, { project, name: 'fetch git' });
    await transitionRun(server, { id: job.id, to: 'QUEUED' }); // WAITING
    await transitionRun(server, { id: job.id, to: 'RUNNING' });
    for (const [progress, phase] of [
      [0.1, 'cloning'],
      [0.5, 'fetching commits'],
    ] as const) {
      const run = await mutate<{ reportProgress: { progress: number; phase: string } }>(
        `mutation($id: ID!, $p: Float!, $ph: String) { reportProgress(input: { id: $id, progress: $p, phase: $ph }) { progress phase } }`,
        { id: job.id, p: progress, ph: phase },
      );
      expect(run.reportProgress).toEqual({ progress, phase });
    }
    // SUSPENDED by the system (rate limit), then resumed and running again.
    await transitionRun(server, { id: job.id, to: 'SUSPENDED', reason: 'RATE_LIMITED' });
    const resumed = await mutate<{ resumeRun: { __typename: string } }>(
      `mutation($id: ID!) { resumeRun(id: $id) { __typename } }`,
      { id: job.id },
    );
    expect(resumed.resumeRun.__typename).toBe('TransitionAccepted');
    await transitionRun(server, { id: job.id, to: 'RUNNING' });
    // CANCEL_REQUESTED, then CANCELED with the stop message.
    const stop = await mutate<{ stopRun: { run: { status: string } } }>(
      `mutation($id: ID!) { stopRun(id: $id, message: "user canceled") { ... on TransitionAccepted { run { status } } } }`,
      { id: job.id },
    );
    expect(stop.stopRun.run.status).toBe('STOPPING');
    await transitionRun(server, { id: job.id, to: 'STOPPED', message: 'user canceled' });
    const final = await mutate<{
      run: { status: string; stopMessage: string; isDone: boolean; progress: number };
    }>(`query($id: ID!) { run(id: $id) { status stopMessage isDone progress } }`, { id: job.id });
    expect(final.run).toEqual({
      status: 'STOPPED',
      stopMessage: 'user canceled',
      isDone: true,
      progress: 0.5,
    });
    expect((await getHistory(server, job.id)).map((h) => h.to)).toEqual([
      'CREATED',
      'QUEUED',
      'RUNNING',
      'SUSPENDED',
      'RESUMING',
      'RUNNING',
      'STOPPING',
      'STOPPED',
    ]);
  });
});

describe('Canary: PENDING, STAGING, RUNNING, FINISHING, DONE (+ outcome)', () => {
  it('dependencies with conditions, and measurements', async () => {
    const project = uniqueProject('canary');
    const build = await createRun(server, { project, name: 'build' });
    const unit = await createRun(server, { project, name: 'unit', dependsOn: [build.id] });
    // A cleanup job that runs whatever the tests did (condition: upstream done).
    const cleanup = await createRun(server, {
      project,
      name: 'cleanup',
      dependsOn: [unit.id],
      trigger: 'ALL_DONE',
    });
    for (const to of ['STARTING', 'RUNNING', 'PROCESSING', 'SUCCEEDED']) {
      await transitionRun(server, { id: build.id, to }); // STAGING, RUNNING, FINISHING, DONE
    }
    expect(await statusOf(server, unit.id)).toBe('QUEUED');
    await transitionRun(server, { id: unit.id, to: 'RUNNING' });
    const written = await mutate<{ recordMeasurements: number }>(
      `mutation($id: ID!) { recordMeasurements(input: { runId: $id, measurements: [
        { name: "tests.passed", value: 41 }, { name: "tests.failed", value: 1 }, { name: "duration", value: 12.5 }] }) }`,
      { id: unit.id },
    );
    expect(written.recordMeasurements).toBe(3);
    await transitionRun(server, { id: unit.id, to: 'FAILED', message: '1 test failed' }); // DONE, outcome fail
    expect(await statusOf(server, cleanup.id)).toBe('QUEUED');
    const read = await mutate<{ run: { latestMeasurements: { name: string; value: number }[] } }>(
      `query($id: ID!) { run(id: $id) { latestMeasurements { name value } } }`,
      { id: unit.id },
    );
    expect(read.run.latestMeasurements).toEqual([
      { name: 'duration', value: 12.5 },
      { name: 'tests.failed', value: 1 },
      { name: 'tests.passed', value: 41 },
    ]);
  });
});
