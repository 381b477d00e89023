import { describe, expect, it } from 'vitest';
import {
  createRun,
  dataOf,
  getHistory,
  RESULT_FIELDS,
  transitionRun,
  type TransitionResultData,
} from '../support/operations.js';
import { useServer, uniqueProject } from '../support/server.js';

// orchestration.md: retries, attempt fencing, stopRun / retryRun / resumeRun.

const server = useServer();

const ATTEMPT_FIELDS = `
  ... on TransitionAccepted { run { status version attempt maxRetries finishedAt stopMessage } }
  ... on TransitionConflict { expectedAttempt actualAttempt }`;

async function transition(input: Record<string, unknown>) {
  return dataOf(
    await server.gql<{ transitionRun: TransitionResultData }>(
      `mutation($input: TransitionRunInput!) { transitionRun(input: $input) { ${RESULT_FIELDS} ${ATTEMPT_FIELDS} } }`,
      { input },
    ),
  ).transitionRun;
}

async function command(name: 'stopRun' | 'retryRun' | 'resumeRun', id: string, text?: string) {
  const arg = name === 'stopRun' ? 'message' : 'reason';
  const response = await server.gql<Record<string, TransitionResultData>>(
    `mutation($id: ID!, $text: String) { ${name}(id: $id, ${arg}: $text) { ${RESULT_FIELDS} ${ATTEMPT_FIELDS} } }`,
    { id, text },
  );
  return dataOf(response)[name]!;
}

describe('automatic retries', () => {
  it('turns failures into RETRYING while attempt <= maxRetries, then fails for good', async () => {
    const run = await createRun(server, { project: uniqueProject(), maxRetries: 2 });
    expect(run).toMatchObject({ attempt: 1, maxRetries: 2 });
    await transition({ id: run.id, to: 'RUNNING' });

    const first = await transition({ id: run.id, to: 'FAILED', message: 'out of memory' });
    expect(first).toMatchObject({
      __typename: 'TransitionAccepted',
      run: { status: 'RETRYING', attempt: 2, finishedAt: null, stopMessage: null },
      change: { from: 'RUNNING', to: 'RETRYING', reason: 'RETRY', message: 'out of memory' },
    });
    await transition({ id: run.id, to: 'RUNNING', attempt: 2 });
    expect(await transition({ id: run.id, to: 'FAILED', attempt: 2 })).toMatchObject({
      run: { status: 'RETRYING', attempt: 3 },
    });
    await transition({ id: run.id, to: 'RUNNING', attempt: 3 });
    const last = await transition({
      id: run.id,
      to: 'FAILED',
      attempt: 3,
      message: 'still broken',
    });
    expect(last).toMatchObject({
      run: { status: 'FAILED', attempt: 3, stopMessage: 'still broken' },
      change: { from: 'RUNNING', to: 'FAILED' },
    });
    expect((await getHistory(server, run.id)).map((h) => h.to)).toEqual([
      'CREATED',
      'RUNNING',
      'RETRYING',
      'RUNNING',
      'RETRYING',
      'RUNNING',
      'FAILED',
    ]);
  });

  it('records FAILED then RETRYING where RETRYING cannot be entered directly', async () => {
    const run = await createRun(server, { project: uniqueProject(), maxRetries: 1 });
    await transition({ id: run.id, to: 'QUEUED' });
    const result = await transition({ id: run.id, to: 'FAILED', message: 'bad image' });
    expect(result).toMatchObject({
      run: { status: 'RETRYING', attempt: 2, version: 4 },
      change: { from: 'FAILED', to: 'RETRYING', version: 4, reason: 'RETRY', message: 'bad image' },
    });
    expect((await getHistory(server, run.id)).slice(-2)).toEqual([
      { from: 'QUEUED', to: 'FAILED', version: 3, reason: null, message: 'bad image' },
      { from: 'FAILED', to: 'RETRYING', version: 4, reason: 'RETRY', message: 'bad image' },
    ]);
  });

  it('without maxRetries a failure is final as asked', async () => {
    const run = await createRun(server, { project: uniqueProject() });
    await transition({ id: run.id, to: 'RUNNING' });
    expect(await transition({ id: run.id, to: 'FAILED' })).toMatchObject({
      run: { status: 'FAILED', attempt: 1, maxRetries: 0 },
    });
  });

  it('refuses maxRetries outside 0..100', async () => {
    for (const maxRetries of [-1, 101]) {
      const response = await server.gql(
        `mutation($m: Int) { createRun(input: { project: "x", maxRetries: $m }) { id } }`,
        { m: maxRetries },
      );
      expect(response.errors?.[0]?.extensions).toMatchObject({
        code: 'BAD_USER_INPUT',
        field: 'input.maxRetries',
      });
    }
  });
});

describe('attempt fencing', () => {
  it('a stale worker cannot overwrite the status of a retried run', async () => {
    const run = await createRun(server, { project: uniqueProject(), maxRetries: 1 });
    await transition({ id: run.id, to: 'RUNNING', attempt: 1 });
    await transition({ id: run.id, to: 'FAILED', attempt: 1 });
    await transition({ id: run.id, to: 'RUNNING', attempt: 2 });

    const stale = await transition({ id: run.id, to: 'SUCCEEDED', attempt: 1 });
    expect(stale).toMatchObject({
      __typename: 'TransitionConflict',
      expectedAttempt: 1,
      actualAttempt: 2,
      actualStatus: 'RUNNING',
    });
    expect(await transition({ id: run.id, to: 'SUCCEEDED', attempt: 2 })).toMatchObject({
      run: { status: 'SUCCEEDED', attempt: 2 },
    });
  });

  it('of 20 concurrent failure reports for one attempt, one retries and the rest are refused', async () => {
    const run = await createRun(server, { project: uniqueProject(), maxRetries: 1 });
    await transition({ id: run.id, to: 'RUNNING', attempt: 1 });
    const results = await Promise.all(
      Array.from({ length: 20 }, () => transition({ id: run.id, to: 'FAILED', attempt: 1 })),
    );
    expect(results.filter((r) => r.__typename === 'TransitionAccepted')).toHaveLength(1);
    expect(results.filter((r) => r.__typename === 'TransitionConflict')).toHaveLength(19);
    expect((await getHistory(server, run.id)).map((h) => h.to)).toEqual([
      'CREATED',
      'RUNNING',
      'RETRYING',
    ]);
  });

  it('a failure that started the next attempt, sent again with its key, gets its first answer', async () => {
    // A worker whose answer to FAILED (which became RETRYING, attempt 2) was lost retries the
    // same request: the replay, not a stale-attempt refusal, for a worker told the truth.
    const run = await createRun(server, { project: uniqueProject(), maxRetries: 1 });
    await transition({ id: run.id, to: 'RUNNING', attempt: 1 });
    const request = { id: run.id, to: 'FAILED', attempt: 1, idempotencyKey: 'fail-1' };
    const first = await transition(request);
    expect(first).toMatchObject({ run: { status: 'RETRYING', attempt: 2 } });
    const again = await transition(request);
    expect(again).toMatchObject({
      __typename: 'TransitionAccepted',
      change: { to: 'RETRYING', version: 3 },
      run: { status: 'RETRYING', attempt: 2 },
    });
    // Without that key, attempt 1 is stale; attempt 2 reusing the key is a new request.
    expect(await transition({ ...request, idempotencyKey: 'other' })).toMatchObject({
      __typename: 'TransitionConflict',
      actualAttempt: 2,
    });
    expect(await transition({ ...request, to: 'RUNNING', attempt: 2 })).toMatchObject({
      __typename: 'TransitionAccepted',
      run: { status: 'RUNNING', attempt: 2 },
    });
    expect((await getHistory(server, run.id)).map((h) => h.to)).toEqual([
      'CREATED',
      'RUNNING',
      'RETRYING',
      'RUNNING',
    ]);
  });

  it('a late SUCCEEDED after UNKNOWN is accepted', async () => {
    const run = await createRun(server, { project: uniqueProject() });
    await transition({ id: run.id, to: 'RUNNING' });
    await transition({ id: run.id, to: 'UNKNOWN', reason: 'HEARTBEAT_TIMEOUT' });
    expect(await transition({ id: run.id, to: 'SUCCEEDED', attempt: 1 })).toMatchObject({
      run: { status: 'SUCCEEDED' },
    });
  });
});

describe('stopRun, retryRun, resumeRun', () => {
  it('stopRun ends a run not yet handed on, and asks a running one to stop', async () => {
    const project = uniqueProject();
    const waiting = await createRun(server, { project });
    expect(await command('stopRun', waiting.id, 'not needed')).toMatchObject({
      run: { status: 'STOPPED', stopMessage: 'not needed' },
      change: { from: 'CREATED', to: 'STOPPED', reason: 'STOP_REQUESTED' },
    });
    const running = await createRun(server, { project });
    await transitionRun(server, { id: running.id, to: 'RUNNING' });
    expect(await command('stopRun', running.id)).toMatchObject({
      run: { status: 'STOPPING' },
      change: { from: 'RUNNING', to: 'STOPPING' },
    });
    // Asking again changes nothing; a finished run cannot be stopped.
    expect(await command('stopRun', running.id)).toMatchObject({
      __typename: 'TransitionAccepted',
      change: null,
    });
    await transitionRun(server, { id: running.id, to: 'SUCCEEDED' });
    expect(await command('stopRun', running.id)).toMatchObject({
      __typename: 'IllegalTransition',
      from: 'SUCCEEDED',
    });
  });

  it('retryRun starts the next attempt from FAILED or UNKNOWN; the lifecycle refuses it from STOPPED', async () => {
    const project = uniqueProject();
    const failed = await createRun(server, { project });
    await transitionRun(server, { id: failed.id, to: 'RUNNING' });
    await transitionRun(server, { id: failed.id, to: 'FAILED', message: 'boom' });
    expect(await command('retryRun', failed.id)).toMatchObject({
      run: { status: 'RETRYING', attempt: 2, finishedAt: null, stopMessage: null },
      change: { from: 'FAILED', to: 'RETRYING', reason: 'RETRY' },
    });
    const lost = await createRun(server, { project });
    await transitionRun(server, { id: lost.id, to: 'RUNNING' });
    await transitionRun(server, { id: lost.id, to: 'UNKNOWN' });
    expect(await command('retryRun', lost.id, 'node lost')).toMatchObject({
      run: { status: 'RETRYING', attempt: 2 },
      change: { reason: 'node lost' },
    });
    const stopped = await createRun(server, { project });
    await command('stopRun', stopped.id);
    expect(await command('retryRun', stopped.id)).toMatchObject({
      __typename: 'IllegalTransition',
      from: 'STOPPED',
      to: 'RETRYING',
      allowed: ['RESUMING'],
    });
  });

  it('resumeRun moves STOPPED, FAILED and SUSPENDED runs to RESUMING, nothing else', async () => {
    const project = uniqueProject();
    const stopped = await createRun(server, { project });
    await command('stopRun', stopped.id);
    expect(await command('resumeRun', stopped.id)).toMatchObject({
      run: { status: 'RESUMING', finishedAt: null, attempt: 1 },
      change: { from: 'STOPPED', to: 'RESUMING', reason: 'RESUME' },
    });
    const suspended = await createRun(server, { project });
    await transitionRun(server, { id: suspended.id, to: 'RUNNING' });
    await transitionRun(server, { id: suspended.id, to: 'SUSPENDED' });
    expect(await command('resumeRun', suspended.id, 'capacity back')).toMatchObject({
      change: { from: 'SUSPENDED', to: 'RESUMING', reason: 'capacity back' },
    });
    const running = await createRun(server, { project });
    await transitionRun(server, { id: running.id, to: 'RUNNING' });
    expect(await command('resumeRun', running.id)).toMatchObject({
      __typename: 'IllegalTransition',
    });
    const missing = await command('resumeRun', '00000000-0000-4000-8000-000000000001');
    expect(missing).toMatchObject({ __typename: 'RunNotFound' });
  });
});
