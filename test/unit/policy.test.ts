import { describe, expect, it } from 'vitest';
import type { RunRow } from '../../src/db/schema.js';
import type { RunStatus } from '../../src/lifecycle/lifecycle.js';
import {
  applyTransition,
  changeTimeFor,
  deadlineFor,
  decideDownstream,
  decideMemoized,
  decideRollup,
  decideScheduled,
  decideTransition,
  keepsSchedulersDecision,
  planChanges,
  refuseStaleAttempt,
  stopTarget,
  emptyRequest,
  type TransitionRequest,
} from '../../src/runs/policy.js';

const t0 = new Date('2026-01-01T00:00:00.000Z');
const t1 = new Date('2026-01-01T00:01:00.000Z');
const t2 = new Date('2026-01-01T00:02:00.000Z');

function run(status: RunStatus, overrides: Partial<RunRow> = {}): RunRow {
  return {
    id: '11111111-1111-4111-8111-111111111111',
    project: 'p',
    name: null,
    tags: [],
    meta: null,
    status,
    version: 3,
    attempt: 1,
    maxRetries: 0,
    revision: 1,
    followers: 0,
    trigger: null,
    skipOnUpstreamSkip: false,
    blockedReason: null,
    cacheKey: null,
    heartbeatTimeout: null,
    queueTimeout: null,
    memoizedFrom: null,
    progress: null,
    phase: null,
    stopMessage: null,
    statusReason: 'CREATED',
    outcome: null,
    exitCode: null,
    attributes: {},
    dialect: 'RUNSTATE',
    parentId: null,
    depth: 0,
    op: null,
    rollup: false,
    scheduledAt: null,
    idempotencyKey: null,
    createdAt: t0,
    updatedAt: t0,
    startedAt: null,
    finishedAt: null,
    heartbeatAt: null,
    ...overrides,
  };
}

function request(to: RunStatus, overrides: Partial<TransitionRequest> = {}): TransitionRequest {
  return { ...emptyRequest(run('CREATED').id, to), ...overrides };
}

describe('decideTransition', () => {
  it('applies a legal move', () => {
    expect(decideTransition(run('QUEUED'), request('RUNNING'))).toEqual({ kind: 'apply' });
  });

  it('treats a move to the current status as a no-op, even where the table has no self-loop', () => {
    expect(decideTransition(run('SUCCEEDED'), request('SUCCEEDED'))).toEqual({ kind: 'noop' });
  });

  it('refuses an illegal move and lists what is allowed', () => {
    expect(decideTransition(run('STOPPING'), request('RUNNING'))).toMatchObject({
      kind: 'illegal',
      from: 'STOPPING',
      to: 'RUNNING',
      allowed: ['SUCCEEDED', 'FAILED', 'STOPPED'],
    });
    expect(decideTransition(run('SUCCEEDED'), request('RUNNING'))).toMatchObject({
      kind: 'illegal',
      allowed: [],
      message: expect.stringContaining('final'),
    });
  });

  it('checks expectations before anything else', () => {
    expect(
      decideTransition(run('RUNNING'), request('RUNNING', { expectedStatus: 'QUEUED' })),
    ).toMatchObject({
      kind: 'conflict',
      expectedStatus: 'QUEUED',
      actualStatus: 'RUNNING',
      actualVersion: 3,
    });
    expect(
      decideTransition(run('RUNNING'), request('CREATED', { expectedVersion: 2 })),
    ).toMatchObject({
      kind: 'conflict',
      expectedVersion: 2,
      actualVersion: 3,
    });
    expect(
      decideTransition(
        run('RUNNING'),
        request('SUCCEEDED', { expectedStatus: 'RUNNING', expectedVersion: 3 }),
      ),
    ).toEqual({ kind: 'apply' });
  });
});

/** A planned change into `to`, with no reason. */
function step(to: RunStatus, message: string | null = null) {
  return { to, reason: null, message };
}

describe('applyTransition', () => {
  it('bumps the version and sets startedAt only on the first start', () => {
    const started = applyTransition(run('QUEUED'), step('STARTING'), t1);
    expect(started).toMatchObject({ status: 'STARTING', version: 4, startedAt: t1, updatedAt: t1 });
    const running = applyTransition(started, step('RUNNING'), t2);
    expect(running.startedAt).toEqual(t1);
    expect(applyTransition(run('QUEUED'), step('SCHEDULED'), t1).startedAt).toBeNull();
  });

  it('sets finishedAt and stopMessage on DONE and clears them when leaving DONE', () => {
    const failed = applyTransition(
      run('RUNNING', { startedAt: t0 }),
      step('FAILED', 'out of memory'),
      t1,
    );
    expect(failed).toMatchObject({ finishedAt: t1, stopMessage: 'out of memory' });
    const retrying = applyTransition(failed, step('RETRYING', 'again'), t2);
    expect(retrying).toMatchObject({
      finishedAt: null,
      stopMessage: null,
      startedAt: t0,
      version: 5,
    });
  });
});

describe('refuseStaleAttempt (fencing)', () => {
  it("refuses a report for an attempt that is not the run's, before any other rule", () => {
    const retried = run('RUNNING', { attempt: 2 });
    expect(refuseStaleAttempt(retried, request('SUCCEEDED', { attempt: 1 }))).toMatchObject({
      kind: 'conflict',
      expectedAttempt: 1,
      actualAttempt: 2,
    });
    expect(decideTransition(retried, request('RUNNING', { attempt: 1 }))).toMatchObject({
      kind: 'conflict',
    });
    expect(refuseStaleAttempt(retried, request('SUCCEEDED', { attempt: 2 }))).toBeNull();
    expect(refuseStaleAttempt(retried, request('SUCCEEDED'))).toBeNull();
  });
});

describe('stopTarget', () => {
  it('stops at once a run no executor holds, and asks an executor to stop the others', () => {
    for (const status of ['CREATED', 'ON_SCHEDULE', 'COMPILED', 'QUEUED', 'RESUMING', 'RETRYING'])
      expect(stopTarget(run(status as RunStatus)), status).toBe('STOPPED');
    for (const status of ['SCHEDULED', 'STARTING', 'RUNNING', 'PROCESSING', 'UNKNOWN'])
      expect(stopTarget(run(status as RunStatus)), status).toBe('STOPPING');
  });
});

describe('planChanges (retries)', () => {
  const failing = (overrides: Partial<RunRow> = {}) =>
    run('RUNNING', { maxRetries: 2, attempt: 1, ...overrides });

  it('records a failure with retries left as RETRYING (reason RETRY), the message kept', () => {
    expect(planChanges(failing(), 'FAILED', request('FAILED', { message: 'oom' }))).toEqual([
      { to: 'RETRYING', reason: 'RETRY', message: 'oom' },
    ]);
  });

  it('as FAILED then RETRYING where the lifecycle has no direct move (from QUEUED)', () => {
    expect(planChanges(failing({ status: 'QUEUED' }), 'FAILED', request('FAILED'))).toEqual([
      { to: 'FAILED', reason: null, message: null },
      { to: 'RETRYING', reason: 'RETRY', message: null },
    ]);
  });

  it('records the failure alone once retries are spent, when forced, or while stopping', () => {
    const only = [{ to: 'FAILED', reason: null, message: null }];
    expect(planChanges(failing({ attempt: 3 }), 'FAILED', request('FAILED'))).toEqual(only);
    expect(
      planChanges(failing(), 'FAILED', request('FAILED', { force: true, reason: null })),
    ).toEqual(only);
    expect(planChanges(failing({ status: 'STOPPING' }), 'FAILED', request('FAILED'))).toEqual(only);
  });

  it('leaves every other target alone', () => {
    expect(planChanges(failing(), 'SUCCEEDED', request('SUCCEEDED'))).toEqual([
      { to: 'SUCCEEDED', reason: null, message: null },
    ]);
  });

  it('starts the next attempt on RETRYING', () => {
    expect(applyTransition(failing(), step('RETRYING'), t1).attempt).toBe(2);
  });
});

describe('changeTimeFor', () => {
  it("never lets a run's times go backwards", () => {
    expect(changeTimeFor(run('RUNNING', { updatedAt: t2 }), t1)).toEqual(t2);
    expect(changeTimeFor(run('RUNNING', { updatedAt: t1 }), t2)).toEqual(t2);
  });
});

describe('decideMemoized', () => {
  it('makes a cacheKey hit SKIPPED (MEMOIZED) at its creation time, standing for the memo', () => {
    const created = run('CREATED', { version: 1, createdAt: t0, updatedAt: t0 });
    const memo = { id: '22222222-2222-4222-8222-222222222222' };
    expect(decideMemoized(created, memo)).toEqual({
      run: expect.objectContaining({
        status: 'SKIPPED',
        version: 2,
        finishedAt: t0,
        memoizedFrom: memo.id,
      }),
      change: { to: 'SKIPPED', reason: 'MEMOIZED', message: `memoized from run ${memo.id}` },
    });
    expect(decideMemoized(created, null)).toBeNull();
  });
});

describe('keepsSchedulersDecision', () => {
  it('queues a run still waiting, not one already QUEUED or taken over by a scheduler', () => {
    expect(keepsSchedulersDecision(run('CREATED', { blockedReason: 'waiting' }))).toBe(true);
    expect(keepsSchedulersDecision(run('CREATED'))).toBe(true);
    expect(keepsSchedulersDecision(run('RETRYING', { blockedReason: 'waiting' }))).toBe(true);
    expect(keepsSchedulersDecision(run('QUEUED', { blockedReason: 'waiting' }))).toBe(false);
    expect(keepsSchedulersDecision(run('COMPILED'))).toBe(false);
  });
});

describe('deadlineFor', () => {
  const at = (seconds: number) => new Date(t0.getTime() + seconds * 1000);

  it('a run silent longer than its heartbeatTimeout in the RUNNING category is UNKNOWN', () => {
    const silent = run('RUNNING', { heartbeatTimeout: 30, updatedAt: t0, heartbeatAt: at(20) });
    expect(deadlineFor(silent, at(49), 300)).toBeNull();
    expect(deadlineFor(silent, at(51), 300)).toEqual({
      to: 'UNKNOWN',
      reason: 'HEARTBEAT_TIMEOUT',
    });
    expect(deadlineFor({ ...silent, status: 'PROCESSING' }, at(51), 300)).toMatchObject({
      to: 'UNKNOWN',
    });
    expect(deadlineFor({ ...silent, heartbeatTimeout: null }, at(51), 300)).toBeNull();
  });

  it('a run waiting longer than its queueTimeout is FAILED', () => {
    const waiting = run('QUEUED', { queueTimeout: 60, updatedAt: t0 });
    expect(deadlineFor(waiting, at(59), 300)).toBeNull();
    expect(deadlineFor(waiting, at(61), 300)).toEqual({ to: 'FAILED', reason: 'QUEUE_TIMEOUT' });
    expect(deadlineFor({ ...waiting, status: 'CREATED' }, at(61), 300)).toMatchObject({
      to: 'FAILED',
    });
    expect(deadlineFor({ ...waiting, status: 'RUNNING' }, at(61), 300)).toBeNull();
  });

  it('a run STOPPING longer than the stop timeout is STOPPED; a done run has no deadline', () => {
    const stopping = run('STOPPING', { updatedAt: t0 });
    expect(deadlineFor(stopping, at(299), 300)).toBeNull();
    expect(deadlineFor(stopping, at(301), 300)).toEqual({ to: 'STOPPED', reason: 'STOP_TIMEOUT' });
    const done = run('SUCCEEDED', { heartbeatTimeout: 1, queueTimeout: 1, updatedAt: t0 });
    expect(deadlineFor(done, at(10_000), 300)).toBeNull();
  });
});

describe('decideDownstream', () => {
  const waiting = (overrides: Partial<RunRow> = {}) =>
    run('CREATED', { version: 1, trigger: 'ALL_SUCCEEDED', ...overrides });
  const upstream = (status: RunStatus) => ({ id: 'u1', name: 'train', status });

  it('queues a run whose conditions are met, in one change with the reason', () => {
    const decided = decideDownstream(waiting(), [upstream('SUCCEEDED')], [], t1, 'ci');
    expect(decided.run).toMatchObject({ status: 'QUEUED', version: 2, blockedReason: null });
    expect(decided.changes).toEqual([
      expect.objectContaining({
        fromStatus: 'CREATED',
        toStatus: 'QUEUED',
        version: 2,
        reason: 'UPSTREAM_SATISFIED',
        at: t1,
        actor: 'ci',
      }),
    ]);
  });

  it('fails upstream a run whose conditions can never be met, saying why', () => {
    const decided = decideDownstream(waiting(), [upstream('FAILED')], [], t1, null);
    expect(decided.run.status).toBe('UPSTREAM_FAILED');
    expect(decided.run.blockedReason).toContain('upstream u1 (train) is FAILED');
    expect(decided.changes[0]).toMatchObject({ toStatus: 'UPSTREAM_FAILED' });
  });

  it('only says what a run still waits for while its conditions are open', () => {
    const decided = decideDownstream(waiting(), [upstream('RUNNING')], [], t1, null);
    expect(decided.changes).toEqual([]);
    expect(decided.run).toMatchObject({ status: 'CREATED', version: 1 });
    expect(decided.run.blockedReason).toContain('u1 (train) is RUNNING');
  });

  it('waits for an event trigger as well as for dependencies', () => {
    const event = {
      refId: 'r2',
      refName: null,
      refStatus: 'QUEUED' as RunStatus,
      kinds: ['RUN_STATUS_RUNNING'],
      statuses: ['RUNNING'] as RunStatus[],
      emitted: false,
    };
    const decided = decideDownstream(waiting(), [upstream('SUCCEEDED')], [event], t1, null);
    expect(decided.changes).toEqual([]);
    expect(decided.run.blockedReason).toContain('r2 to emit RUN_STATUS_RUNNING');
  });
});

describe('decideRollup', () => {
  const parent = (status: RunStatus) => run(status, { rollup: true });
  const counts = (entries: [RunStatus, number][]) => new Map(entries);
  it('starts with its first running child, and not twice', () => {
    expect(
      decideRollup(
        parent('CREATED'),
        counts([
          ['RUNNING', 1],
          ['CREATED', 2],
        ]),
        null,
      ),
    ).toEqual([{ to: 'RUNNING', reason: 'CHILD_RUNNING', message: null }]);
    expect(decideRollup(parent('RUNNING'), counts([['RUNNING', 2]]), null)).toEqual([]);
  });
  it('ends SUCCEEDED when every child is done and none failed; FAILED naming the child', () => {
    expect(
      decideRollup(
        parent('RUNNING'),
        counts([
          ['SUCCEEDED', 2],
          ['SKIPPED', 1],
          ['STOPPED', 1],
        ]),
        null,
      ),
    ).toMatchObject([{ to: 'SUCCEEDED', reason: 'CHILDREN_SUCCEEDED' }]);
    const failed = decideRollup(
      parent('RUNNING'),
      counts([
        ['SUCCEEDED', 2],
        ['UPSTREAM_FAILED', 1],
      ]),
      'c7',
    );
    expect(failed).toMatchObject([{ to: 'FAILED', reason: 'CHILD_FAILED' }]);
    expect(failed[0]!.message).toContain('c7');
    // Not while a child is not done.
    expect(
      decideRollup(
        parent('RUNNING'),
        counts([
          ['SUCCEEDED', 2],
          ['QUEUED', 1],
        ]),
        null,
      ),
    ).toEqual([]);
  });
  it('goes through RUNNING where the table has no direct move, and stops a stopping parent', () => {
    expect(
      decideRollup(parent('CREATED'), counts([['SKIPPED', 3]]), null).map((c) => c.to),
    ).toEqual(['RUNNING', 'SUCCEEDED']);
    expect(
      decideRollup(
        parent('STOPPING'),
        counts([
          ['STOPPED', 2],
          ['SUCCEEDED', 1],
        ]),
        null,
      ),
    ).toMatchObject([{ to: 'STOPPED', reason: 'CHILDREN_STOPPED' }]);
  });
  it('opens a parent its rollup failed once the failed child is retried, and ends it again', () => {
    const failed = run('FAILED', { rollup: true, statusReason: 'CHILD_FAILED' });
    expect(
      decideRollup(
        failed,
        counts([
          ['FAILED', 1],
          ['SUCCEEDED', 1],
        ]),
        'c',
      ),
    ).toEqual([]);
    expect(
      decideRollup(
        failed,
        counts([
          ['RETRYING', 1],
          ['SUCCEEDED', 1],
        ]),
        null,
      ).map((c) => c.to),
    ).toEqual(['RESUMING']);
    expect(
      decideRollup(
        failed,
        counts([
          ['RUNNING', 1],
          ['SUCCEEDED', 1],
        ]),
        null,
      ).map((c) => c.to),
    ).toEqual(['RESUMING', 'RUNNING']);
    // FAILED by its owner, not by its rollup: left alone.
    const owned = run('FAILED', { rollup: true, statusReason: 'OOM' });
    expect(decideRollup(owned, counts([['SUCCEEDED', 2]]), null)).toEqual([]);
  });

  it('leaves a parent without rollup, a done parent, and a parent without children alone', () => {
    expect(decideRollup(run('RUNNING'), counts([['SUCCEEDED', 1]]), null)).toEqual([]);
    expect(decideRollup(parent('SUCCEEDED'), counts([['FAILED', 1]]), null)).toEqual([]);
    expect(decideRollup(parent('RUNNING'), counts([]), null)).toEqual([]);
  });
});

describe('deadlineFor and decideScheduled (schedules)', () => {
  it('a scheduled run waits ON_SCHEDULE and is due at its time, before any queue timeout', () => {
    const scheduled = decideScheduled(run('CREATED'), t1);
    expect(scheduled.run).toMatchObject({ status: 'ON_SCHEDULE', version: 4 });
    expect(scheduled.change).toMatchObject({ to: 'ON_SCHEDULE', reason: 'SCHEDULED' });
    const waiting = { ...scheduled.run, scheduledAt: t2, queueTimeout: 1 };
    // A minute past its queueTimeout, but before its time: it waits.
    expect(deadlineFor(waiting, t1, 300)).toBeNull();
    expect(deadlineFor(waiting, t2, 300)).toEqual({ to: 'QUEUED', reason: 'SCHEDULE_DUE' });
  });
});
