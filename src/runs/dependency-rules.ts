import type { TriggerPolicy } from '../db/schema.js';
import {
  canStillEnter,
  getCategory,
  getStatusesInCategories,
  isTransitionAllowed,
  type RunStatus,
} from '../lifecycle/lifecycle.js';

/**
 * Trigger policies (Polyaxon's) over a run's upstreams: pure, so every policy and edge is
 * unit-testable. "Failed" counts FAILED and UPSTREAM_FAILED; "done" is the DONE category.
 */

export interface UpstreamState {
  id: string;
  name: string | null;
  status: RunStatus;
  /** Set for a run memoized from a SUCCEEDED one: its SKIPPED counts as SUCCEEDED. */
  memoizedFrom?: string | null;
  /** A condition of its own (the statuses that satisfy it); absent: under the trigger policy. */
  when?: readonly RunStatus[] | null;
}

/** A memoized run (Parsl's memo_done) is a success for its downstreams. */
function effectiveStatus(u: UpstreamState): RunStatus {
  return u.status === 'SKIPPED' && u.memoizedFrom != null ? 'SUCCEEDED' : u.status;
}

export type TriggerDecision =
  /** Conditions not met yet; `reason` says what the run waits for. */
  | { kind: 'wait'; reason: string }
  /** Conditions met: the run may be queued. */
  | { kind: 'start'; reason: string }
  /** Conditions can never be met: UPSTREAM_FAILED, or SKIPPED where an upstream skip is the cause. */
  | { kind: 'fail'; to: 'UPSTREAM_FAILED' | 'SKIPPED'; reason: string; message: string };

const isFailed = (s: RunStatus) => s === 'FAILED' || s === 'UPSTREAM_FAILED';
const isDone = (s: RunStatus) => getCategory(s) === 'DONE';
const label = (u: UpstreamState) => (u.name ? `${u.id} (${u.name})` : u.id);

export function evaluateTrigger(
  policy: TriggerPolicy,
  upstreamStates: readonly UpstreamState[],
  skipOnUpstreamSkip: boolean,
): TriggerDecision {
  const upstreams = upstreamStates.map((u) => ({ ...u, status: effectiveStatus(u) }));
  const succeeded = upstreams.filter((u) => u.status === 'SUCCEEDED');
  const failed = upstreams.filter((u) => isFailed(u.status));
  const done = upstreams.filter((u) => isDone(u.status));
  const pending = upstreams.filter((u) => !isDone(u.status));
  const all = upstreams.length;

  /** Upstreams that finished in a way the policy cannot use. */
  const spoilers = (good: (s: RunStatus) => boolean) => done.filter((u) => !good(u.status));
  const fail = (culprits: UpstreamState[], rule: string): TriggerDecision => {
    const skipped = culprits.filter((u) => u.status === 'SKIPPED');
    // Only when skips alone are the cause; any real failure among them is a failure.
    const toSkip = skipOnUpstreamSkip && skipped.length > 0 && skipped.length === culprits.length;
    const shown = (toSkip ? skipped : culprits).slice(0, 5);
    return {
      kind: 'fail',
      to: toSkip ? 'SKIPPED' : 'UPSTREAM_FAILED',
      reason: toSkip ? 'UPSTREAM_SKIPPED' : 'UPSTREAM_FAILED',
      message: `${policy} can no longer be met: ${shown
        .map((u) => `upstream ${label(u)} is ${u.status}`)
        .join(', ')}${culprits.length > shown.length ? ', …' : ''} (${rule})`,
    };
  };
  const wait = (what: string): TriggerDecision => ({
    kind: 'wait',
    reason: `waiting for ${what} (${policy}): ${pending
      .slice(0, 5)
      .map((u) => `${label(u)} is ${u.status}`)
      .join(', ')}${pending.length > 5 ? ', …' : ''}`,
  });
  const start: TriggerDecision = { kind: 'start', reason: 'UPSTREAM_SATISFIED' };

  switch (policy) {
    case 'ALL_SUCCEEDED': {
      const bad = spoilers((s) => s === 'SUCCEEDED');
      if (bad.length > 0) return fail(bad, 'every upstream must succeed');
      return succeeded.length === all
        ? start
        : wait(`${all - succeeded.length} upstream(s) to succeed`);
    }
    case 'ALL_FAILED': {
      const bad = spoilers(isFailed);
      if (bad.length > 0) return fail(bad, 'every upstream must fail');
      return failed.length === all ? start : wait(`${all - failed.length} upstream(s) to fail`);
    }
    case 'ALL_DONE':
      return done.length === all ? start : wait(`${all - done.length} upstream(s) to finish`);
    case 'ONE_SUCCEEDED':
      if (succeeded.length > 0) return start;
      return pending.length === 0
        ? fail(done, 'one upstream must succeed')
        : wait('one upstream to succeed');
    case 'ONE_FAILED':
      if (failed.length > 0) return start;
      return pending.length === 0
        ? fail(done, 'one upstream must fail')
        : wait('one upstream to fail');
    case 'ONE_DONE':
      return done.length > 0 ? start : wait('one upstream to finish');
  }
}

/** RUN_STATUS_<status> for each status, and RUN_STATUS_DONE for any DONE status. */
export type RunEventKind = `RUN_STATUS_${RunStatus}` | 'RUN_STATUS_DONE';

/** The statuses whose entry emits `kind`. */
export function statusesOfEventKind(kind: RunEventKind): RunStatus[] {
  if (kind === 'RUN_STATUS_DONE') return getStatusesInCategories(['DONE']);
  return [kind.slice('RUN_STATUS_'.length) as RunStatus];
}

export interface EventTriggerState {
  refId: string;
  refName: string | null;
  refStatus: RunStatus;
  kinds: readonly string[];
  /** The statuses whose entry emits one of the kinds. */
  statuses: readonly RunStatus[];
  /** The ref entered one of the kinds' statuses at some point. */
  emitted: boolean;
}

/**
 * Event triggers: met when every ref emitted one of its kinds; impossible once no legal path
 * leads a ref that has not emitted it to one of the kinds' statuses (it is final, say), not
 * merely once it is DONE: a FAILED or STOPPED ref may still be resumed or retried.
 */
export function evaluateEvents(events: readonly EventTriggerState[]): TriggerDecision {
  const impossible = events.filter((e) => !e.emitted && !canStillEnter(e.refStatus, e.statuses));
  if (impossible.length > 0) {
    return {
      kind: 'fail',
      to: 'UPSTREAM_FAILED',
      reason: 'UPSTREAM_FAILED',
      message: impossible
        .slice(0, 5)
        .map(
          (e) =>
            `event ${e.kinds.join(' or ')} of ${e.refId}${e.refName ? ` (${e.refName})` : ''} can no longer happen: it is ${e.refStatus}`,
        )
        .join(', '),
    };
  }
  const missing = events.filter((e) => !e.emitted);
  if (missing.length === 0) return { kind: 'start', reason: 'EVENT_TRIGGERED' };
  return {
    kind: 'wait',
    reason: `waiting for ${missing
      .slice(0, 5)
      .map((e) => `${e.refId} to emit ${e.kinds.join(' or ')} (it is ${e.refStatus})`)
      .join(', ')}`,
  };
}

/**
 * One condition (Canary's `when`) against its upstream's status now: satisfied when the status
 * is one of `when`; it can still be while the upstream is not done and a legal path leads it
 * there, or, once done, when a move it may still make is one of them (FAILED -> RETRYING).
 * A done upstream otherwise decides: a pipeline whose step failed does not wait for ever.
 */
export function conditionState(
  upstream: Pick<UpstreamState, 'status' | 'memoizedFrom'>,
  when: readonly RunStatus[],
): { satisfied: boolean; possible: boolean } {
  const status = effectiveStatus(upstream as UpstreamState);
  if (when.includes(status)) return { satisfied: true, possible: true };
  const possible = isDone(status)
    ? when.some((w) => isTransitionAllowed(status, w))
    : canStillEnter(status, when);
  return { satisfied: false, possible };
}

/** Per-dependency conditions, all required: start when every one holds, fail once one cannot. */
export function evaluateConditions(conditions: readonly UpstreamState[]): TriggerDecision {
  const states = conditions.map((u) => ({ u, ...conditionState(u, u.when ?? ['SUCCEEDED']) }));
  const impossible = states.filter((s) => !s.possible);
  if (impossible.length > 0) {
    return {
      kind: 'fail',
      to: 'UPSTREAM_FAILED',
      reason: 'UPSTREAM_FAILED',
      message: impossible
        .slice(0, 5)
        .map(({ u }) => `upstream ${label(u)} is ${u.status}, never ${(u.when ?? []).join(' or ')}`)
        .join(', '),
    };
  }
  const waiting = states.filter((s) => !s.satisfied);
  if (waiting.length === 0) return { kind: 'start', reason: 'UPSTREAM_SATISFIED' };
  return {
    kind: 'wait',
    reason: `waiting for ${waiting
      .slice(0, 5)
      .map(({ u }) => `${label(u)} to be ${(u.when ?? []).join(' or ')} (it is ${u.status})`)
      .join(', ')}${waiting.length > 5 ? ', …' : ''}`,
  };
}

/** Dependencies, conditions and event triggers together: fail if any fails, start when all are met. */
export function combineDecisions(...decisions: (TriggerDecision | null)[]): TriggerDecision {
  const parts = decisions.filter((d): d is TriggerDecision => d != null);
  const failed = parts.find((d) => d.kind === 'fail');
  if (failed) return failed;
  const waiting = parts.filter(
    (d): d is Extract<TriggerDecision, { kind: 'wait' }> => d.kind === 'wait',
  );
  if (waiting.length > 0) return { kind: 'wait', reason: waiting.map((w) => w.reason).join('; ') };
  return parts[0] ?? { kind: 'start', reason: 'UPSTREAM_SATISFIED' };
}
