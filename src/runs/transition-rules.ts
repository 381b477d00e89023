import type { RunRow } from '../db/schema.js';
import {
  getStatusInfo,
  isDone,
  isTransitionAllowed,
  startsRunning,
  type RunStatus,
} from '../lifecycle/lifecycle.js';

/**
 * The rules a requested status change goes through, in order, against the run as it is under
 * its row lock. Pure: no I/O, so every rule is unit-testable and the service stays small.
 */

export interface TransitionRequest {
  id: string;
  to: RunStatus;
  /** For requests whose target depends on the run's state (stopRun): computed under the lock. */
  resolveTo?: (run: RunRow) => RunStatus;
  /** The worker's attempt (fencing); null: not checked. */
  attempt: number | null;
  /** Internal (the reaper): refuse unless the row is still at this revision. */
  expectedRevision?: number;
  /** An administrator's correction: the lifecycle table is not consulted; no automatic retry. */
  force?: boolean;
  reason: string | null;
  message: string | null;
  expectedStatus: RunStatus | null;
  expectedVersion: number | null;
  idempotencyKey: string | null;
}

/** What a refused precondition answers: what the caller expected, and what is. */
export interface ConflictDetails {
  expectedStatus: RunStatus | null;
  expectedVersion: number | null;
  expectedAttempt: number | null;
  actualStatus: RunStatus;
  actualVersion: number;
  actualAttempt: number;
  message: string;
}

function conflict(
  run: RunRow,
  request: TransitionRequest,
  message: string,
): Extract<Decision, { kind: 'conflict' }> {
  return {
    kind: 'conflict',
    expectedStatus: request.expectedStatus,
    expectedVersion: request.expectedVersion,
    expectedAttempt: request.attempt,
    actualStatus: run.status,
    actualVersion: run.version,
    actualAttempt: run.attempt,
    message,
  };
}

export type Decision =
  | { kind: 'apply' }
  | { kind: 'noop' }
  | ({ kind: 'conflict' } & ConflictDetails)
  | { kind: 'illegal'; from: RunStatus; to: RunStatus; allowed: RunStatus[]; message: string };

/** The status a request asks for, given the run as it is under its lock. */
export function targetOf(run: RunRow, request: TransitionRequest): RunStatus {
  return request.resolveTo ? request.resolveTo(run) : request.to;
}

/** Decide what to do with a request against the locked, current run. */
export function decideTransition(run: RunRow, request: TransitionRequest): Decision {
  const to = targetOf(run, request);
  return (
    refuseStaleAttempt(run, request) ??
    refuseStalePrecondition(run, request) ??
    acceptSameStatusAsNoop(run, to) ??
    (request.force ? null : refuseIllegalMove(run, to)) ?? { kind: 'apply' }
  );
}

/**
 * Fencing: a worker still reporting for an attempt that was retried must not overwrite the new
 * attempt's status (nor may it claim an attempt that does not exist yet).
 */
export function refuseStaleAttempt(
  run: RunRow,
  request: TransitionRequest,
): Extract<Decision, { kind: 'conflict' }> | null {
  if (request.attempt == null || request.attempt === run.attempt) return null;
  return conflict(
    run,
    request,
    `run ${run.id} is at attempt ${run.attempt}, not ${request.attempt}`,
  );
}

/** The caller acted on a state that is no longer current (a lost race): tell it what is. */
function refuseStalePrecondition(run: RunRow, request: TransitionRequest): Decision | null {
  const statusMismatch = request.expectedStatus != null && request.expectedStatus !== run.status;
  const versionMismatch =
    request.expectedVersion != null && request.expectedVersion !== run.version;
  const revisionMismatch =
    request.expectedRevision != null && request.expectedRevision !== run.revision;
  if (!statusMismatch && !versionMismatch && !revisionMismatch) return null;
  const expected = [
    request.expectedStatus != null ? `status ${request.expectedStatus}` : null,
    request.expectedVersion != null ? `version ${request.expectedVersion}` : null,
    revisionMismatch ? 'as it was when found overdue' : null,
  ]
    .filter(Boolean)
    .join(' and ');
  return conflict(
    run,
    request,
    `run ${run.id} is ${run.status} at version ${run.version}, not ${expected}`,
  );
}

/** Rule 10: moving to the current status writes nothing and sends nothing. */
function acceptSameStatusAsNoop(run: RunRow, to: RunStatus): Decision | null {
  return to === run.status ? { kind: 'noop' } : null;
}

/** Only moves in the lifecycle table; the answer lists what is allowed instead. */
function refuseIllegalMove(run: RunRow, to: RunStatus): Decision | null {
  if (isTransitionAllowed(run.status, to)) return null;
  const allowed = [...getStatusInfo(run.status).allowedNext];
  return {
    kind: 'illegal',
    from: run.status,
    to,
    allowed,
    message:
      allowed.length === 0
        ? `run ${run.id} is ${run.status}, which is final: no transition is allowed`
        : `run ${run.id} cannot go from ${run.status} to ${to}; allowed: ${allowed.join(', ')}`,
  };
}

/**
 * When a change to `run` happens, given the transaction's clock. now() is when the transaction
 * started; one that waited for the run's lock may have started before the change it waited for.
 * A run's times never go backwards.
 */
export function changeTimeFor(run: RunRow, now: Date): Date {
  return new Date(Math.max(now.getTime(), run.updatedAt.getTime()));
}

/** One status change to write: the status, and why. */
export interface PlannedChange {
  to: RunStatus;
  reason: string | null;
  message: string | null;
}

/**
 * What an accepted request writes. A failure with retries left becomes RETRYING (reason RETRY,
 * the failure message kept): directly where the lifecycle allows it, else as FAILED then
 * RETRYING (FAILED -> RETRYING always is).
 */
export function planChanges(
  run: RunRow,
  to: RunStatus,
  request: TransitionRequest,
): PlannedChange[] {
  const asked: PlannedChange = { to, reason: request.reason, message: request.message };
  // A stop that was asked for wins: a run failing while STOPPING is not started again.
  if (
    request.force ||
    to !== 'FAILED' ||
    run.attempt > run.maxRetries ||
    run.status === 'STOPPING'
  ) {
    return [asked];
  }
  const retry: PlannedChange = { to: 'RETRYING', reason: 'RETRY', message: request.message };
  return isTransitionAllowed(run.status, 'RETRYING') ? [retry] : [asked, retry];
}

/**
 * The run after an accepted change into `to` at `now`: version +1; the first entry into the
 * running statuses sets startedAt; a DONE status sets finishedAt and stopMessage; leaving DONE
 * (resume, retry) clears them again; entering RETRYING starts the next attempt.
 */
export function applyTransition(
  run: RunRow,
  to: RunStatus,
  now: Date,
  message: string | null,
): RunRow {
  const next: RunRow = { ...run, status: to, version: run.version + 1, updatedAt: now };
  if (to === 'RETRYING') next.attempt = run.attempt + 1;
  if (startsRunning(to) && run.startedAt == null) next.startedAt = now;
  if (isDone(to)) {
    next.finishedAt = now;
    next.stopMessage = message;
  } else if (isDone(run.status)) {
    next.finishedAt = null;
    next.stopMessage = null;
  }
  return next;
}
