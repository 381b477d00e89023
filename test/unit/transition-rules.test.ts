import { describe, expect, it } from 'vitest';
import type { RunRow } from '../../src/db/schema.js';
import type { RunStatus } from '../../src/lifecycle/lifecycle.js';
import {
  applyTransition,
  decideTransition,
  type TransitionRequest,
} from '../../src/runs/transition-rules.js';

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
  return {
    id: run('CREATED').id,
    to,
    attempt: null,
    reason: null,
    message: null,
    expectedStatus: null,
    expectedVersion: null,
    idempotencyKey: null,
    ...overrides,
  };
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

describe('applyTransition', () => {
  it('bumps the version and sets startedAt only on the first start', () => {
    const started = applyTransition(run('QUEUED'), 'STARTING', t1, null);
    expect(started).toMatchObject({ status: 'STARTING', version: 4, startedAt: t1, updatedAt: t1 });
    const running = applyTransition(started, 'RUNNING', t2, null);
    expect(running.startedAt).toEqual(t1);
    expect(applyTransition(run('QUEUED'), 'SCHEDULED', t1, null).startedAt).toBeNull();
  });

  it('sets finishedAt and stopMessage on DONE and clears them when leaving DONE', () => {
    const failed = applyTransition(
      run('RUNNING', { startedAt: t0 }),
      'FAILED',
      t1,
      'out of memory',
    );
    expect(failed).toMatchObject({ finishedAt: t1, stopMessage: 'out of memory' });
    const retrying = applyTransition(failed, 'RETRYING', t2, 'again');
    expect(retrying).toMatchObject({
      finishedAt: null,
      stopMessage: null,
      startedAt: t0,
      version: 5,
    });
  });
});
