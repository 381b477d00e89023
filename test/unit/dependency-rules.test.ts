import { describe, expect, it } from 'vitest';
import {
  conditionState,
  evaluateConditions,
  evaluateEvents,
  evaluateTrigger,
  type UpstreamState,
} from '../../src/runs/dependency-rules.js';
import type { RunStatus } from '../../src/lifecycle/lifecycle.js';

const up = (id: string, status: RunStatus, memoizedFrom: string | null = null): UpstreamState => ({
  id,
  name: null,
  status,
  memoizedFrom,
});

describe('evaluateTrigger', () => {
  it('SKIPPED (with skipOnUpstreamSkip) only when skips alone are the cause', () => {
    expect(
      evaluateTrigger('ALL_SUCCEEDED', [up('a', 'SKIPPED'), up('b', 'RUNNING')], true),
    ).toMatchObject({
      kind: 'fail',
      to: 'SKIPPED',
    });
    expect(
      evaluateTrigger('ALL_SUCCEEDED', [up('a', 'SKIPPED'), up('b', 'FAILED')], true),
    ).toMatchObject({
      kind: 'fail',
      to: 'UPSTREAM_FAILED',
    });
    expect(evaluateTrigger('ALL_SUCCEEDED', [up('a', 'SKIPPED')], false)).toMatchObject({
      to: 'UPSTREAM_FAILED',
    });
  });

  it('a memoized SKIPPED counts as SUCCEEDED', () => {
    expect(evaluateTrigger('ALL_SUCCEEDED', [up('a', 'SKIPPED', 'orig')], false)).toMatchObject({
      kind: 'start',
    });
    expect(evaluateTrigger('ONE_FAILED', [up('a', 'SKIPPED', 'orig')], false)).toMatchObject({
      kind: 'fail',
    });
  });

  it('waits, naming what it waits for, while the policy may still be met', () => {
    const decision = evaluateTrigger(
      'ALL_SUCCEEDED',
      [up('a', 'SUCCEEDED'), up('b', 'RUNNING')],
      false,
    );
    expect(decision.kind).toBe('wait');
    expect(decision.kind === 'wait' && decision.reason).toContain('b is RUNNING');
    expect(evaluateTrigger('ONE_DONE', [up('a', 'RUNNING'), up('b', 'QUEUED')], false).kind).toBe(
      'wait',
    );
    expect(evaluateTrigger('ALL_DONE', [up('a', 'FAILED'), up('b', 'SKIPPED')], false).kind).toBe(
      'start',
    );
  });
});

describe('evaluateEvents', () => {
  const ev = (emitted: boolean, refStatus: RunStatus) => ({
    refId: 'r',
    refName: null,
    refStatus,
    kinds: ['RUN_STATUS_RUNNING'],
    statuses: ['RUNNING'] as RunStatus[],
    emitted,
  });
  it('starts when emitted, waits while possible, fails once no legal path leads to it', () => {
    expect(evaluateEvents([ev(true, 'SUCCEEDED')]).kind).toBe('start');
    expect(evaluateEvents([ev(false, 'QUEUED')]).kind).toBe('wait');
    // STOPPED and FAILED may be resumed or retried, and run again.
    expect(evaluateEvents([ev(false, 'STOPPED')]).kind).toBe('wait');
    expect(evaluateEvents([ev(false, 'FAILED')]).kind).toBe('wait');
    for (const final of ['SUCCEEDED', 'UPSTREAM_FAILED', 'SKIPPED'] as const) {
      expect(evaluateEvents([ev(false, final)])).toMatchObject({
        kind: 'fail',
        to: 'UPSTREAM_FAILED',
      });
    }
  });

  it('a ref in FAILED may still be retried: a watcher of RETRYING waits, not fails', () => {
    const retrying = { ...ev(false, 'FAILED'), statuses: ['RETRYING'] as RunStatus[] };
    expect(evaluateEvents([retrying]).kind).toBe('wait');
    expect(evaluateEvents([{ ...retrying, refStatus: 'STOPPED' }]).kind).toBe('wait');
    // RUNNING can reach RETRYING; a ref that is CREATED can too.
    expect(evaluateEvents([{ ...retrying, refStatus: 'CREATED' }]).kind).toBe('wait');
  });
});

describe('conditions (a `when` per dependency)', () => {
  const up = (status: RunStatus, when: RunStatus[]) => ({ id: 'u', name: null, status, when });
  it('holds in a listed status; waits while it may still get there', () => {
    expect(conditionState(up('FAILED', ['FAILED']), ['FAILED'])).toEqual({
      satisfied: true,
      possible: true,
    });
    expect(conditionState(up('RUNNING', ['FAILED']), ['FAILED'])).toEqual({
      satisfied: false,
      possible: true,
    });
  });
  it('a done upstream decides, unless a move it may make next is listed', () => {
    expect(conditionState(up('SUCCEEDED', ['FAILED']), ['FAILED']).possible).toBe(false);
    // A failed step may still be retried, but a condition on its success does not wait for it.
    expect(conditionState(up('FAILED', ['SUCCEEDED']), ['SUCCEEDED']).possible).toBe(false);
    expect(conditionState(up('FAILED', ['RETRYING']), ['RETRYING']).possible).toBe(true);
  });
  it('a memoized upstream counts as SUCCEEDED', () => {
    expect(conditionState({ status: 'SKIPPED', memoizedFrom: 'm' }, ['SUCCEEDED']).satisfied).toBe(
      true,
    );
  });
  it('all are required: starts when every one holds, fails on the first that never can', () => {
    expect(
      evaluateConditions([up('FAILED', ['FAILED']), up('SUCCEEDED', ['SUCCEEDED'])]).kind,
    ).toBe('start');
    expect(evaluateConditions([up('FAILED', ['FAILED']), up('RUNNING', ['SUCCEEDED'])]).kind).toBe(
      'wait',
    );
    expect(
      evaluateConditions([up('SUCCEEDED', ['FAILED']), up('RUNNING', ['SUCCEEDED'])]),
    ).toMatchObject({
      kind: 'fail',
      to: 'UPSTREAM_FAILED',
    });
  });
});
