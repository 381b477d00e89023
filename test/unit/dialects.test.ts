import { describe, expect, it } from 'vitest';
import {
  DIALECTS,
  findPredicate,
  getDialect,
  listDialects,
  nativeNameOf,
  predicatesHolding,
  resolveNativeStatus,
  type Dialect,
} from '../../src/lifecycle/dialects.js';
import { isDone, RUN_STATUSES, type RunStatus } from '../../src/lifecycle/lifecycle.js';

// dialects.md: one table, walked both ways.

/**
 * Names accepted on input that answers never use, because another name of the dialect answers
 * for their status: Parsl's unsched (gone since Parsl 2025.11.17; a CREATED task answers
 * pending), and Canary's job phases (answers use the test statuses, which say more).
 */
const INPUT_ONLY: Record<Dialect, string[]> = {
  RUNSTATE: [],
  POLYAXON: [],
  PERCEVAL: [],
  PARSL: ['unsched'],
  CANARY: ['PENDING', 'SUBMITTED', 'STAGING', 'RUNNING', 'FINISHING', 'DONE'],
};

describe.each(DIALECTS)('the %s dialect', (dialect) => {
  const info = getDialect(dialect);

  it('answers every runstate status with one of its names, a name that answers for itself', () => {
    for (const status of RUN_STATUSES) {
      const name = nativeNameOf(dialect, { status });
      const entry = resolveNativeStatus(dialect, name);
      expect(entry, `${status} answers ${name}`).not.toBeNull();
      // Sent back, the name is recorded as a status that is answered with that name again.
      expect(nativeNameOf(dialect, entry!), `${status} -> ${name} -> ${entry!.status}`).toBe(name);
      // A dialect may be coarser than runstate, but never calls a finished run unfinished.
      expect(isDone(entry!.status), `${status} answers ${name}`).toBe(isDone(status));
      // ... nor a success anything but a success.
      expect(entry!.status === 'SUCCEEDED', `${status} answers ${name}`).toBe(
        status === 'SUCCEEDED',
      );
    }
  });

  it('records every name as one status that answers with that name again, refined by its outcome or reason', () => {
    for (const entry of info.statuses) {
      const answered = nativeNameOf(dialect, {
        status: entry.status,
        outcome: entry.outcome,
        reason: entry.reason,
      });
      if (INPUT_ONLY[dialect].includes(entry.name)) {
        expect(answered, entry.name).not.toBe(entry.name);
        expect(isDone(resolveNativeStatus(dialect, answered)!.status)).toBe(isDone(entry.status));
      } else {
        expect(answered, `${entry.name} -> ${entry.status} -> ${answered}`).toBe(entry.name);
      }
      // Every alias is the same entry.
      for (const alias of entry.aliases) expect(resolveNativeStatus(dialect, alias)).toBe(entry);
    }
  });

  it('spells every name and alias once, and is case-sensitive', () => {
    const spellings = info.statuses.flatMap((s) => [s.name, ...s.aliases]);
    expect(new Set(spellings).size).toBe(spellings.length);
    expect(resolveNativeStatus(dialect, 'no such status')).toBeNull();
  });

  it('writes every predicate in its own names, each holding for some status, named once', () => {
    const names = info.predicates.map((p) => p.name);
    expect(new Set(names).size).toBe(names.length);
    for (const predicate of info.predicates) {
      expect(predicate.statuses.length, predicate.name).toBeGreaterThan(0);
      expect(predicate.description.trim(), predicate.name).not.toBe('');
      for (const status of predicate.statuses)
        expect(predicatesHolding(dialect, status)).toContain(predicate.name);
    }
  });
});

describe('the vocabularies, as each system defines them', () => {
  const statusesOf = (dialect: Dialect, predicate: string) =>
    [...(findPredicate(dialect, predicate)?.statuses ?? [])].sort();
  const sorted = (statuses: RunStatus[]) => [...statuses].sort();

  it('Polyaxon: the V1Statuses values in lowercase, their member names as aliases', () => {
    expect(resolveNativeStatus('POLYAXON', 'upstream_failed')!.status).toBe('UPSTREAM_FAILED');
    expect(resolveNativeStatus('POLYAXON', 'RUNNING')!.name).toBe('running');
    expect(nativeNameOf('POLYAXON', { status: 'ON_SCHEDULE' })).toBe('on_schedule');
    // LifeCycle's own sets, not runstate's categories.
    expect(statusesOf('POLYAXON', 'is_pending')).toEqual(
      sorted(['CREATED', 'ON_SCHEDULE', 'RESUMING']),
    );
    expect(statusesOf('POLYAXON', 'is_compilable')).toEqual(
      sorted(['CREATED', 'ON_SCHEDULE', 'RESUMING', 'RETRYING']),
    );
    expect(statusesOf('POLYAXON', 'failed')).toEqual(sorted(['FAILED', 'UPSTREAM_FAILED']));
    expect(statusesOf('POLYAXON', 'is_done_or_stopping')).toEqual(
      sorted(['FAILED', 'UPSTREAM_FAILED', 'STOPPED', 'SKIPPED', 'SUCCEEDED', 'STOPPING']),
    );
    expect(statusesOf('POLYAXON', 'is_k8s_stoppable')).toEqual(
      sorted([
        'SCHEDULED',
        'STARTING',
        'INITIALIZING',
        'RUNNING',
        'PROCESSING',
        'UNSCHEDULABLE',
        'WARNING',
        'SUSPENDED',
        'UNKNOWN',
      ]),
    );
  });

  it('Perceval: SUCCESS answers a success, the server name "completed" is accepted', () => {
    expect(nativeNameOf('PERCEVAL', { status: 'SUCCEEDED' })).toBe('SUCCESS');
    expect(resolveNativeStatus('PERCEVAL', 'completed')!.name).toBe('SUCCESS');
    expect(resolveNativeStatus('PERCEVAL', 'cancel_requested')!.status).toBe('STOPPING');
    expect(statusesOf('PERCEVAL', 'maybe_completed')).toEqual(
      sorted(['SUCCEEDED', 'FAILED', 'UPSTREAM_FAILED', 'STOPPED', 'SKIPPED', 'UNKNOWN']),
    );
    expect(statusesOf('PERCEVAL', 'running')).toContain('STOPPING');
    expect(statusesOf('PERCEVAL', 'failed')).not.toContain('SUCCEEDED');
  });

  it('Parsl: memo_done is SKIPPED with reason MEMOIZED; FINAL_STATES; joining by its reason', () => {
    expect(resolveNativeStatus('PARSL', 'memo_done')).toMatchObject({
      status: 'SKIPPED',
      reason: 'MEMOIZED',
    });
    expect(resolveNativeStatus('PARSL', 'States.exec_done')!.name).toBe('exec_done');
    expect(nativeNameOf('PARSL', { status: 'RUNNING', reason: 'JOINING' })).toBe('joining');
    expect(nativeNameOf('PARSL', { status: 'RUNNING', reason: 'other' })).toBe('running');
    expect(statusesOf('PARSL', 'final')).toEqual(
      sorted(['SUCCEEDED', 'SKIPPED', 'FAILED', 'UPSTREAM_FAILED', 'STOPPED']),
    );
    expect(statusesOf('PARSL', 'failed')).toEqual(sorted(['FAILED', 'UPSTREAM_FAILED', 'STOPPED']));
  });

  it('Canary: outcomes keep what the status alone loses', () => {
    expect(resolveNativeStatus('CANARY', 'diffed')).toMatchObject({
      status: 'FAILED',
      outcome: 'DIFF',
    });
    expect(nativeNameOf('CANARY', { status: 'FAILED', outcome: 'DIFF' })).toBe('diffed');
    expect(nativeNameOf('CANARY', { status: 'FAILED', outcome: 'TIMEOUT' })).toBe('timeout');
    expect(nativeNameOf('CANARY', { status: 'FAILED' })).toBe('failed');
    expect(nativeNameOf('CANARY', { status: 'SUCCEEDED', outcome: 'XFAIL' })).toBe('xfail');
    expect(nativeNameOf('CANARY', { status: 'UPSTREAM_FAILED' })).toBe('not_run');
    expect(resolveNativeStatus('CANARY', 'STAGING')!.status).toBe('STARTING');
    expect(statusesOf('CANARY', 'is_success')).toEqual(['SUCCEEDED']);
    expect(statusesOf('CANARY', 'is_done')).toEqual(
      sorted(['SUCCEEDED', 'FAILED', 'UPSTREAM_FAILED', 'STOPPED', 'SKIPPED']),
    );
  });

  it('RUNSTATE: identity, with the categories and the is* flags as predicates', () => {
    for (const status of RUN_STATUSES) expect(nativeNameOf('RUNSTATE', { status })).toBe(status);
    expect(statusesOf('RUNSTATE', 'isPending')).toEqual(
      sorted(['CREATED', 'ON_SCHEDULE', 'COMPILED', 'QUEUED', 'RESUMING', 'RETRYING']),
    );
    expect(statusesOf('RUNSTATE', 'isFinal')).toEqual(
      sorted(['SUCCEEDED', 'UPSTREAM_FAILED', 'SKIPPED']),
    );
    expect(listDialects().map((d) => d.dialect)).toEqual([...DIALECTS]);
  });
});
