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
  reason: string | null;
  message: string | null;
  expectedStatus: RunStatus | null;
  expectedVersion: number | null;
  idempotencyKey: string | null;
}

export type Decision =
  | { kind: 'apply' }
  | { kind: 'noop' }
  | {
      kind: 'conflict';
      expectedStatus: RunStatus | null;
      expectedVersion: number | null;
      actualStatus: RunStatus;
      actualVersion: number;
      message: string;
    }
  | { kind: 'illegal'; from: RunStatus; to: RunStatus; allowed: RunStatus[]; message: string };

/** Decide what to do with a request against the locked, current run. */
export function decideTransition(run: RunRow, request: TransitionRequest): Decision {
  return (
    refuseStalePrecondition(run, request) ??
    acceptSameStatusAsNoop(run, request) ??
    refuseIllegalMove(run, request) ?? { kind: 'apply' }
  );
}

/** The caller acted on a state that is no longer current (a lost race): tell it what is. */
function refuseStalePrecondition(run: RunRow, request: TransitionRequest): Decision | null {
  const statusMismatch = request.expectedStatus != null && request.expectedStatus !== run.status;
  const versionMismatch =
    request.expectedVersion != null && request.expectedVersion !== run.version;
  if (!statusMismatch && !versionMismatch) return null;
  const expected = [
    request.expectedStatus != null ? `status ${request.expectedStatus}` : null,
    request.expectedVersion != null ? `version ${request.expectedVersion}` : null,
  ]
    .filter(Boolean)
    .join(' and ');
  return {
    kind: 'conflict',
    expectedStatus: request.expectedStatus,
    expectedVersion: request.expectedVersion,
    actualStatus: run.status,
    actualVersion: run.version,
    message: `run ${run.id} is ${run.status} at version ${run.version}, not ${expected}`,
  };
}

/** Rule 10: moving to the current status writes nothing and sends nothing. */
function acceptSameStatusAsNoop(run: RunRow, request: TransitionRequest): Decision | null {
  return request.to === run.status ? { kind: 'noop' } : null;
}

/** Only moves in the lifecycle table; the answer lists what is allowed instead. */
function refuseIllegalMove(run: RunRow, request: TransitionRequest): Decision | null {
  if (isTransitionAllowed(run.status, request.to)) return null;
  const allowed = [...getStatusInfo(run.status).allowedNext];
  return {
    kind: 'illegal',
    from: run.status,
    to: request.to,
    allowed,
    message:
      allowed.length === 0
        ? `run ${run.id} is ${run.status}, which is final: no transition is allowed`
        : `run ${run.id} cannot go from ${run.status} to ${request.to}; allowed: ${allowed.join(', ')}`,
  };
}

/**
 * The run after an accepted change into `to` at `now`: version +1; the first entry into the
 * running statuses sets startedAt; a DONE status sets finishedAt and stopMessage; leaving DONE
 * (resume, retry) clears them again.
 */
export function applyTransition(
  run: RunRow,
  to: RunStatus,
  now: Date,
  message: string | null,
): RunRow {
  const next: RunRow = { ...run, status: to, version: run.version + 1, updatedAt: now };
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
