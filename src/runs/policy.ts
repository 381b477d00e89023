import type { NewStatusChange } from '../changelog/change-store.js';
import type { RunRow } from '../db/schema.js';
import { BadUserInputError } from '../errors.js';
import { getDialect, resolveNativeStatus, type Dialect } from '../lifecycle/dialects.js';
import {
  getStatusesInCategories,
  getStatusInfo,
  impliedSteps,
  isDone,
  isTransitionAllowed,
  startsRunning,
  type RunStatus,
} from '../lifecycle/lifecycle.js';
import {
  combineDecisions,
  evaluateConditions,
  evaluateEvents,
  evaluateTrigger,
  type EventTriggerState,
  type UpstreamState,
} from './dependency-rules.js';

/**
 * The lifecycle's policy: every rule that decides a status, as a small pure function, in the
 * order they apply. The lifecycle table (lifecycle.ts) is the data; this is what is done with it.
 * Pure: no I/O, so each rule has its own unit test (test/unit/policy.test.ts) and the
 * transaction code (transition-batch.ts, orchestration.ts, run-service.ts) only runs them; the
 * SQL only reads and writes.
 *
 * A requested change, against the run under its row lock:
 *   0. resolveRequest           a native name in the run's dialect, or a stop's target
 *   1. refuseStaleAttempt       fencing: a retried attempt's worker cannot overwrite the next
 *   2. refuseStalePrecondition  a lost race: the caller acted on a state no longer current
 *   3. acceptSameStatusAsNoop   a repeated report writes nothing and sends nothing
 *   4. refuseIllegalMove        only moves in the lifecycle table (an admin's force skips it)
 * Its target, and what is written:
 *   5. stopTarget               a stop ends at once a run no executor holds yet
 *   6. planChanges              a failure with retries left becomes RETRYING
 *   7. applyTransition          versions, attempts and times follow the status
 *   8. changeTimeFor            a run's times never go backwards
 * What a change causes, in the same transaction:
 *   9. decideMemoized           a cacheKey hit is SKIPPED (MEMOIZED): nothing needs to run
 *  10. decideDownstream         dependency and event conditions (dependency-rules.ts) decide a
 *                               waiting run: QUEUED, UPSTREAM_FAILED or SKIPPED, or still waiting
 *  11. keepsSchedulersDecision  a run a scheduler already moved on is not queued again
 * What time decides (the reaper, once across instances):
 *  12. deadlineFor              a schedule due -> QUEUED, silent running -> UNKNOWN,
 *                               queued too long -> FAILED, STOPPING too long -> STOPPED
 */

export interface TransitionRequest {
  id: string;
  /** The status asked for; set by resolveRequest when `native` or `resolveTo` decides it. */
  to: RunStatus;
  /** For requests whose target depends on the run's state (stopRun): computed under the lock. */
  resolveTo?: (run: RunRow) => RunStatus;
  /** A native status name, in `dialect` or else the run's own: resolved under the lock. */
  native?: { spelling: string; dialect: Dialect | null; field: string };
  /** Recorded with the change: the reporter's, or a native name's (which wins). */
  outcome?: string | null;
  /** The worker's exit code, recorded with the change. */
  exitCode?: number | null;
  /** A JSON object recorded with the change (Polyaxon's meta_info). */
  meta?: Record<string, unknown> | null;
  /**
   * When it happened elsewhere (imports, Perceval's update_times): not before the run's last
   * change, and not in the future (checked before the transaction, and under the lock).
   */
  at?: Date | null;
  /** The input field the request came from (`input`, `inputs[2]`), for errors found under the lock. */
  field?: string;
  /** stopRun: the run's steps that are not done stop with it. */
  stopsChildren?: boolean;
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

/** A request to move run `id` to `to` and nothing more: no precondition, reason or key. */
export function emptyRequest(id: string, to: RunStatus): TransitionRequest {
  return {
    id,
    to,
    attempt: null,
    reason: null,
    message: null,
    expectedStatus: null,
    expectedVersion: null,
    idempotencyKey: null,
  };
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

/**
 * The request as the run under its lock makes it: a native name becomes its status, outcome
 * and reason (a name's own reason wins over the request's) in the named dialect or else the run's; stopRun's
 * target is chosen. An unknown name is BAD_USER_INPUT listing the dialect's names.
 */
export function resolveRequest(run: RunRow, request: TransitionRequest): TransitionRequest {
  if (request.native) {
    const { spelling, field } = request.native;
    const dialect = request.native.dialect ?? run.dialect;
    const entry = checkNativeName(dialect, spelling, field);
    return {
      ...request,
      native: undefined,
      to: entry.status,
      // The name's own reason is part of what it means (Parsl's joining): it is recorded.
      reason: entry.reason ?? request.reason,
      outcome: entry.outcome ?? request.outcome ?? null,
    };
  }
  if (request.resolveTo) return { ...request, resolveTo: undefined, to: request.resolveTo(run) };
  return request;
}

/** The native status `spelling` names in `dialect`; BAD_USER_INPUT listing its names if none. */
export function checkNativeName(dialect: Dialect, spelling: string, field: string) {
  const entry = resolveNativeStatus(dialect, spelling);
  if (entry) return entry;
  const names = getDialect(dialect).statuses.map((s) => s.name);
  throw new BadUserInputError(
    field,
    `"${spelling.slice(0, 100)}" is not a ${dialect} status; expected one of ${names.join(', ')}`,
    { allowed: names },
  );
}

/** Decide what to do with a (resolved) request against the locked, current run. */
export function decideTransition(run: RunRow, request: TransitionRequest): Decision {
  const to = request.to;
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

/** A repeated report (a retried request, two workers agreeing) writes nothing, sends nothing. */
function acceptSameStatusAsNoop(run: RunRow, to: RunStatus): Decision | null {
  return to === run.status ? { kind: 'noop' } : null;
}

/**
 * Only moves in the lifecycle table (or reached through an implied RESUMING, see impliedSteps);
 * the answer lists what is allowed instead.
 */
function refuseIllegalMove(run: RunRow, to: RunStatus): Decision | null {
  if (impliedSteps(run.status, to) != null) return null;
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

/** Statuses of a run not handed to an executor yet: nothing runs that would need stopping. */
export const NOT_HANDED_ON: ReadonlySet<RunStatus> = new Set([
  'CREATED',
  'ON_SCHEDULE',
  'COMPILED',
  'QUEUED',
  'RESUMING',
  'RETRYING',
]);

/**
 * Where stopRun takes a run: STOPPED at once when no executor holds it (nobody would confirm a
 * stop), else STOPPING for the executor to finish the stop. Decided under the run's lock.
 */
export function stopTarget(run: RunRow): RunStatus {
  return NOT_HANDED_ON.has(run.status) ? 'STOPPED' : 'STOPPING';
}

/**
 * When a change to `run` happens, given the transaction's clock. now() is when the transaction
 * started; one that waited for the run's lock may have started before the change it waited for.
 * A run's times never go backwards.
 */
export function changeTimeFor(run: RunRow, now: Date): Date {
  return new Date(Math.max(now.getTime(), run.updatedAt.getTime()));
}

/**
 * When a requested change happens: at its reported `at` (an import, Perceval's update_times),
 * which may not be before the run's last change (its history stays in time order), else as
 * changeTimeFor says. BAD_USER_INPUT naming the field otherwise; the transaction writes nothing.
 */
export function requestedChangeTime(run: RunRow, request: TransitionRequest, now: Date): Date {
  if (request.at == null) return changeTimeFor(run, now);
  if (request.at.getTime() < run.updatedAt.getTime()) {
    throw new BadUserInputError(
      `${request.field ?? 'input'}.at`,
      `is before the run's last change (${run.updatedAt.toISOString()})`,
    );
  }
  return request.at;
}

/** One status change to write: the status, why, and the outcome recorded with it. */
export interface PlannedChange {
  to: RunStatus;
  reason: string | null;
  message: string | null;
  outcome?: string | null;
  exitCode?: number | null;
  meta?: Record<string, unknown> | null;
}

/**
 * What an accepted request writes. A SUSPENDED run sent a status RESUMING leads to is RESUMING
 * first (reason RESUME), in the same transaction. A failure with retries left becomes RETRYING
 * (reason RETRY, the failure message kept): directly where the lifecycle allows it, else as
 * FAILED then RETRYING (FAILED -> RETRYING always is).
 */
export function planChanges(
  run: RunRow,
  to: RunStatus,
  request: TransitionRequest,
): PlannedChange[] {
  const asked: PlannedChange = { to, reason: request.reason, message: request.message };
  if (request.outcome != null) asked.outcome = request.outcome;
  if (request.exitCode != null) asked.exitCode = request.exitCode;
  if (request.meta != null) asked.meta = request.meta;
  const implied = request.force ? [] : (impliedSteps(run.status, to) ?? []);
  if (implied.length > 0) {
    return [...implied.map((step) => ({ to: step, reason: 'RESUME', message: null })), asked];
  }
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
  // Straight to RETRYING, the failure's report (outcome, exit code, meta) is kept on that row.
  if (isTransitionAllowed(run.status, 'RETRYING')) {
    const { to: _failed, reason: _reason, ...report } = asked;
    return [{ ...report, ...retry }];
  }
  return [asked, retry];
}

/**
 * The run after an accepted change into `to` at `now`: version +1; the first entry into the
 * running statuses sets startedAt; a DONE status sets finishedAt and stopMessage; leaving DONE
 * (resume, retry) clears them again; entering RETRYING starts the next attempt. A stop request
 * (STOPPING) keeps its message as the stop message of the stop it causes, unless the change
 * that ends it gives its own.
 */
export function applyTransition(run: RunRow, change: PlannedChange, now: Date): RunRow {
  const { to, message } = change;
  const next: RunRow = {
    ...run,
    status: to,
    version: run.version + 1,
    updatedAt: now,
    statusReason: change.reason,
    outcome: isDone(to) ? (change.outcome ?? null) : null,
    exitCode: isDone(to) ? (change.exitCode ?? null) : null,
  };
  if (to === 'RETRYING') next.attempt = run.attempt + 1;
  if (startsRunning(to) && run.startedAt == null) next.startedAt = now;
  if (isDone(to)) {
    next.finishedAt = now;
    next.stopMessage = message ?? (run.status === 'STOPPING' ? run.stopMessage : null);
  } else {
    if (isDone(run.status)) next.finishedAt = null;
    next.stopMessage = to === 'STOPPING' ? message : null;
  }
  return next;
}

/**
 * A run created with the cacheKey of a SUCCEEDED run of its project: SKIPPED at once (reason
 * MEMOIZED, Parsl's memo_done), standing for that run; downstreams treat it as succeeded.
 */
export function decideMemoized(
  run: RunRow,
  memo: { id: string } | null,
): { run: RunRow; change: PlannedChange } | null {
  if (!memo) return null;
  const change: PlannedChange = {
    to: 'SKIPPED',
    reason: 'MEMOIZED',
    message: `memoized from run ${memo.id}`,
  };
  return {
    run: { ...applyTransition(run, change, run.createdAt), memoizedFrom: memo.id },
    change,
  };
}

/** The change-log row of a planned change from `run` to `next`. */
export function changeOf(
  run: RunRow,
  next: RunRow,
  change: PlannedChange,
): Omit<NewStatusChange, 'actor'> {
  return {
    runId: run.id,
    project: run.project,
    parentId: run.parentId,
    fromStatus: run.status,
    toStatus: next.status,
    version: next.version,
    reason: change.reason,
    message: change.message,
    outcome: change.outcome ?? null,
    exitCode: change.exitCode ?? null,
    meta: change.meta ?? null,
    attempt: next.attempt,
    at: next.updatedAt,
  };
}

/** A run created with `scheduledAt` waits ON_SCHEDULE for it (the reaper queues it then). */
export function decideScheduled(
  run: RunRow,
  scheduledAt: Date,
): { run: RunRow; change: PlannedChange } {
  const change: PlannedChange = {
    to: 'ON_SCHEDULE',
    reason: 'SCHEDULED',
    message: `queued at ${scheduledAt.toISOString()}`,
  };
  return { run: applyTransition(run, change, run.createdAt), change };
}

/**
 * Apply a waiting run's trigger policy to its upstreams' states, and its event triggers to their
 * refs: QUEUED when met, UPSTREAM_FAILED (or SKIPPED) when they never can be, else only its
 * blockedReason changes.
 */
export function decideDownstream(
  run: RunRow,
  upstreams: readonly UpstreamState[],
  events: readonly EventTriggerState[],
  at: Date,
  actor: string | null,
): { run: RunRow; changes: NewStatusChange[] } {
  const byPolicy = upstreams.filter((u) => u.when == null);
  const conditions = upstreams.filter((u) => u.when != null);
  const decision = combineDecisions(
    run.trigger && byPolicy.length > 0
      ? evaluateTrigger(run.trigger, byPolicy, run.skipOnUpstreamSkip)
      : null,
    conditions.length > 0 ? evaluateConditions(conditions) : null,
    events.length > 0 ? evaluateEvents(events) : null,
  );
  if (decision.kind === 'wait') {
    return { run: { ...run, blockedReason: decision.reason }, changes: [] };
  }
  const to = decision.kind === 'start' ? 'QUEUED' : decision.to;
  const message = decision.kind === 'start' ? null : decision.message;
  const next = {
    ...applyTransition(run, { to, reason: decision.reason, message }, at),
    blockedReason: decision.kind === 'start' ? null : decision.message,
  };
  return {
    run: next,
    changes: [
      {
        runId: run.id,
        project: run.project,
        parentId: run.parentId,
        fromStatus: run.status,
        toStatus: to,
        version: next.version,
        reason: decision.reason,
        message,
        attempt: next.attempt,
        at,
        actor,
      },
    ],
  };
}

/**
 * A rollup parent after its children (counts per status, this batch's changes included): RUNNING
 * when a child runs and the parent has not started; once every child is DONE, FAILED if one
 * failed (naming `failedChild` when known), else SUCCEEDED, or STOPPED for a parent whose stop
 * was asked for. Through RUNNING where the table has no direct move (CREATED -> SUCCEEDED). A
 * parent FAILED by its rollup is RESUMING again once no child has failed any more.
 */
export function decideRollup(
  parent: RunRow,
  counts: ReadonlyMap<RunStatus, number>,
  failedChild: string | null,
): PlannedChange[] {
  if (!parent.rollup) return [];
  // A parent its rollup failed opens again once no child has failed any more (the failed step
  // was retried or resumed): RESUMING, then as its children say.
  if (parent.status === 'FAILED' && parent.statusReason === 'CHILD_FAILED') {
    if ((counts.get('FAILED') ?? 0) > 0 || (counts.get('UPSTREAM_FAILED') ?? 0) > 0) return [];
    const reopen: PlannedChange = { to: 'RESUMING', reason: 'CHILD_RETRIED', message: null };
    const resumed = { ...parent, status: 'RESUMING' as const, statusReason: reopen.reason };
    return [reopen, ...decideRollup(resumed, counts, failedChild)];
  }
  if (isDone(parent.status)) return [];
  let total = 0;
  let done = 0;
  let failed = 0;
  let running = 0;
  for (const [status, n] of counts) {
    if (n <= 0) continue;
    total += n;
    if (isDone(status)) done += n;
    if (status === 'FAILED' || status === 'UPSTREAM_FAILED') failed += n;
    if (getStatusInfo(status).category === 'RUNNING') running += n;
  }
  let target: PlannedChange;
  if (total > 0 && done === total) {
    if (parent.status === 'STOPPING') {
      target = { to: 'STOPPED', reason: 'CHILDREN_STOPPED', message: 'every child is done' };
    } else if (failed > 0) {
      target = {
        to: 'FAILED',
        reason: 'CHILD_FAILED',
        message: `${failedChild ? `child ${failedChild} failed` : 'a child failed'} (${failed} of ${total} failed)`,
      };
    } else {
      target = { to: 'SUCCEEDED', reason: 'CHILDREN_SUCCEEDED', message: `${total} children done` };
    }
  } else if (running > 0 && ['PENDING', 'QUEUED'].includes(getStatusInfo(parent.status).category)) {
    target = { to: 'RUNNING', reason: 'CHILD_RUNNING', message: null };
  } else {
    return [];
  }
  if (isTransitionAllowed(parent.status, target.to)) return [target];
  const through: PlannedChange = { to: 'RUNNING', reason: 'CHILD_RUNNING', message: null };
  if (isTransitionAllowed(parent.status, 'RUNNING') && isTransitionAllowed('RUNNING', target.to))
    return [through, target];
  return [];
}

/**
 * Queue only a run that was waiting for its conditions: not one already QUEUED, nor one that a
 * scheduler took over after its conditions were met (it left CREATED with no blockedReason).
 * Answers whether a decision to queue `run` stands.
 */
export function keepsSchedulersDecision(run: RunRow): boolean {
  return !(run.status === 'QUEUED' || (run.status !== 'CREATED' && run.blockedReason == null));
}

/** What a deadline decides: the status and the reason recorded. */
export interface Deadline {
  to: 'UNKNOWN' | 'FAILED' | 'STOPPED' | 'QUEUED';
  reason: 'HEARTBEAT_TIMEOUT' | 'QUEUE_TIMEOUT' | 'STOP_TIMEOUT' | 'SCHEDULE_DUE';
}

/** Statuses in which a run must beat (heartbeatTimeout), and in which it waits (queueTimeout). */
export const RUNNING_STATUSES = getStatusesInCategories(['RUNNING']);
export const WAITING_STATUSES = getStatusesInCategories(['PENDING', 'QUEUED']);

/**
 * The deadline `run` is past at `now`, if any: a run with heartbeatTimeout silent that long in
 * the RUNNING category becomes UNKNOWN (its executor may be gone; a late beat or SUCCEEDED is
 * still accepted); one with queueTimeout waiting that long becomes FAILED; one STOPPING longer
 * than stopTimeoutSeconds becomes STOPPED (nobody confirmed the stop).
 */
export function deadlineFor(
  run: Pick<
    RunRow,
    'status' | 'heartbeatTimeout' | 'queueTimeout' | 'heartbeatAt' | 'updatedAt' | 'scheduledAt'
  >,
  now: Date,
  stopTimeoutSeconds: number,
): Deadline | null {
  const since = (from: Date) => (now.getTime() - from.getTime()) / 1000;
  // A scheduled run waits for its time (its queueTimeout does not count before), then queues.
  if (run.status === 'ON_SCHEDULE' && run.scheduledAt != null) {
    return run.scheduledAt <= now ? { to: 'QUEUED', reason: 'SCHEDULE_DUE' } : null;
  }
  if (run.heartbeatTimeout != null && RUNNING_STATUSES.includes(run.status)) {
    const last = Math.max(run.updatedAt.getTime(), run.heartbeatAt?.getTime() ?? 0);
    if (since(new Date(last)) > run.heartbeatTimeout)
      return { to: 'UNKNOWN', reason: 'HEARTBEAT_TIMEOUT' };
  }
  if (
    run.queueTimeout != null &&
    WAITING_STATUSES.includes(run.status) &&
    since(run.updatedAt) > run.queueTimeout
  ) {
    return { to: 'FAILED', reason: 'QUEUE_TIMEOUT' };
  }
  if (run.status === 'STOPPING' && since(run.updatedAt) > stopTimeoutSeconds)
    return { to: 'STOPPED', reason: 'STOP_TIMEOUT' };
  return null;
}
