import type { Db } from '../db/client.js';
import type { RunRow, StatusChangeRow, TriggerPolicy } from '../db/schema.js';
import {
  BadUserInputError,
  NotFoundError,
  RevisionConflictError,
  StaleAttemptError,
} from '../errors.js';
import type { RunUpdates } from '../live/run-updates.js';
import type { Dialect } from '../lifecycle/dialects.js';
import { getStatusInfo, isDone, type RunStatus } from '../lifecycle/lifecycle.js';
import {
  checkFiniteInRange,
  checkIntInRange,
  checkJsonObject,
  checkListLength,
  checkOptionalString,
  checkReportedTime,
  checkTags,
  checkUuid,
  LIMITS,
} from '../validation.js';
import type { RunEventKind } from './dependency-rules.js';
import { createRun } from './create-run.js';
import { retryOnDeadlock } from '../db/deadlock.js';
import { createDirectGroups } from './direct-group.js';
import { runTransitionBatch, type TransitionOutcome } from './transition-batch.js';
import {
  checkNativeName,
  deadlineFor,
  RUNNING_STATUSES,
  stopTarget,
  WAITING_STATUSES,
  emptyRequest,
  type TransitionRequest,
} from './policy.js';
import { canSeeProject, UNRESTRICTED } from '../auth/principal.js';
import type { Actor } from './transition-batch.js';
import type { CommitSignal } from '../changelog/commit-signal.js';
import {
  applyDirectly,
  applyDirectlyBatch,
  mayApplyDirectly,
  type DirectResult,
} from './direct-transition.js';
import { deleteRunTrees } from './retention.js';
import * as store from './run-store.js';

export type { TransitionRequest } from './policy.js';
export type { Actor, TransitionOutcome } from './transition-batch.js';

export interface CreateRunInput {
  project: string;
  name?: string | null;
  tags?: readonly string[] | null;
  meta?: unknown;
  idempotencyKey?: string | null;
  maxRetries?: number | null;
  dependsOn?: readonly string[] | null;
  trigger?: TriggerPolicy | null;
  skipOnUpstreamSkip?: boolean | null;
  cacheKey?: string | null;
  heartbeatTimeout?: number | null;
  queueTimeout?: number | null;
  events?: readonly { ref: string; kinds: readonly RunEventKind[] }[] | null;
  dialect?: Dialect | null;
  parentId?: string | null;
  op?: string | null;
  dependencies?: readonly { ref: string; when?: readonly RunStatus[] | null }[] | null;
  rollup?: boolean | null;
  scheduledAt?: Date | null;
  /** When it was created elsewhere (imports): not in the future. */
  createdAt?: Date | null;
  /** A JSON object, changed later by updateRun. */
  attributes?: unknown;
}

export interface UpdateRunInput {
  id: string;
  /** Replaced when given (null clears it). */
  name?: string | null;
  /** Replaced when given. */
  tags?: readonly string[] | null;
  /** Replaced when given (null clears it). */
  meta?: unknown;
  /** Merged key by key into the run's attributes; a key set to null is removed. */
  attributes?: unknown;
  /** Compare-and-set: refused (REVISION_CONFLICT) unless the run is at this revision. */
  expectedRevision?: number | null;
}

export interface TransitionInput {
  id: string;
  /** Exactly one of `to` and `native`. */
  to?: RunStatus | null;
  /** A native status name in `dialect`, else in the run's own. */
  native?: string | null;
  dialect?: Dialect | null;
  reason?: string | null;
  message?: string | null;
  expectedStatus?: RunStatus | null;
  expectedVersion?: number | null;
  idempotencyKey?: string | null;
  attempt?: number | null;
  /** An administrator's correction; a reason is required. */
  force?: boolean | null;
  /** Free text, upper case by convention (PASS, DIFF, TIMEOUT); a native name's own wins. */
  outcome?: string | null;
  exitCode?: number | null;
  /** A JSON object (Polyaxon's meta_info). */
  meta?: unknown;
  /** When it happened elsewhere (imports): not before the run's last change, not in the future. */
  at?: Date | null;
}

/** What a caller will read of accepted outcomes. */
export interface OutcomeReads {
  /** The run as the change left it (default true). */
  run: boolean;
}

/**
 * Every call that changes a run names its `actor`: the token's name is recorded on the status
 * changes it makes or causes, and a run outside the token's projects is answered as not found.
 */
export interface RunService {
  createRun(input: CreateRunInput, actor: Actor): Promise<RunRow>;
  /**
   * With `answer.run` false, an accepted outcome may have no run to read: the caller's answer
   * does not show it, and the common change then spares reading it.
   */
  transitionRun(
    input: TransitionInput,
    actor: Actor,
    answer?: OutcomeReads,
  ): Promise<TransitionOutcome>;
  /** Each applied on its own, in order, in one transaction. */
  transitionRuns(
    inputs: readonly TransitionInput[],
    actor: Actor,
    answer?: OutcomeReads,
  ): Promise<TransitionOutcome[]>;
  /** STOPPED if the run was not handed to an executor yet, else STOPPING (a stop request). */
  stopRun(id: string, message: string | null | undefined, actor: Actor): Promise<TransitionOutcome>;
  /** RETRYING with the next attempt (from FAILED or UNKNOWN, as the lifecycle allows). */
  retryRun(id: string, reason: string | null | undefined, actor: Actor): Promise<TransitionOutcome>;
  /** RESUMING (from STOPPED, FAILED or SUSPENDED, as the lifecycle allows). */
  resumeRun(
    id: string,
    reason: string | null | undefined,
    actor: Actor,
  ): Promise<TransitionOutcome>;
  /**
   * The reaper's pass: move runs past a deadline (heartbeat, queue, stop timeout). Each move is
   * a compare-and-set on the revision the run had when found, so with several instances each
   * decision is taken once, and a heartbeat that arrived meanwhile cancels it. Answers how
   * many runs were moved.
   */
  reapOverdueRuns(options: { stopTimeoutSeconds: number }): Promise<number>;
  /** With `attempt`, a report from a stale attempt is refused (STALE_ATTEMPT) and not recorded. */
  reportProgress(
    id: string,
    progress: number,
    phase: string | null | undefined,
    attempt: number | null | undefined,
    actor: Actor,
  ): Promise<RunRow>;
  /**
   * Change a run's name, tags, meta (replaced) and attributes (merged); runUpdated fires. With
   * expectedRevision, a compare-and-set (REVISION_CONFLICT when the run moved on).
   */
  updateRun(input: UpdateRunInput, actor: Actor): Promise<RunRow>;
  /**
   * Delete a DONE run with its steps, history, points and keys (an administrator's). Refused
   * (BAD_USER_INPUT on `id`) while it or a step is not done, or a run not done waits for it.
   */
  deleteRun(id: string, actor: Actor): Promise<boolean>;
  /** With `attempt`, a zombie worker's heartbeat cannot keep a retried run alive. */
  heartbeat(id: string, attempt: number | null | undefined, actor: Actor): Promise<RunRow>;
}

export interface RunServiceDeps {
  db: Db;
  /** The one publisher of runUpdated (live/run-updates.ts). */
  runUpdates: Pick<RunUpdates, 'publish'>;
  /**
   * Told after every commit that appended to the change log. Status changes reach subscribers
   * (statusChanged, and runUpdated for status) only through the change-log tail, on every
   * instance alike; they are never published from here.
   */
  changeLog: Pick<
    CommitSignal,
    'committed' | 'offerNotification' | 'notificationSent' | 'notificationFailed'
  >;
  /** Passes progress and heartbeat updates on to the other instances (live/run-signal.ts). */
  runSignal: { runChanged(runId: string): void };
}

/**
 * Keys are per run, and per attempt when the worker says which attempt it reports for: the
 * next attempt reusing a key ("start", "done") must not get the previous attempt's answer.
 */
function scopeIdempotencyKey(key: string | null, attempt: number | null): string | null {
  if (key == null) return null;
  return attempt == null ? `run:${key}` : `attempt ${attempt}:${key}`;
}

export function createRunService(deps: RunServiceDeps): RunService {
  const { db, changeLog, runSignal, runUpdates } = deps;

  async function applyRequests(
    requests: TransitionRequest[],
    actor: Actor,
  ): Promise<TransitionOutcome[]> {
    if (requests.length === 0) return [];
    // A cascade locks downstream runs after the batch's own: rare lock cycles between batches
    // are broken by PostgreSQL (deadlock_detected); the whole batch is then simply run again.
    const result = await retryOnDeadlock(() =>
      db.transaction((tx) => runTransitionBatch(tx, requests, actor)),
    );
    // Status changes reach runUpdated through the change-log tail; a run whose blockedReason
    // alone changed (an upstream finished, another still runs) is published from here.
    const withStatusChange = new Set(result.changes.map((c) => c.runId));
    publishCommitted(
      result.changes,
      result.changedRuns.filter((run) => !withStatusChange.has(run.id)),
    );
    return result.outcomes;
  }

  /** Why an update found no row: no such run, or the run is at another attempt. */
  /** Why a write guarded by scope and attempt may not touch `run`, or null when it may. */
  function refusalFor(
    run: RunRow | null,
    runId: string,
    attempt: number | null | undefined,
    actor: Actor,
  ) {
    if (!run || !canSeeProject(actor, run.project)) return new NotFoundError('run', runId);
    if (attempt != null && attempt !== run.attempt)
      return new StaleAttemptError(runId, run.attempt, attempt);
    return null;
  }

  /** Why a guarded write found no row (without an attempt, only a missing or hidden run). */
  async function missingOrStale(runId: string, attempt: number | null | undefined, actor: Actor) {
    const run = attempt == null ? null : await store.getRunById(db, runId);
    return refusalFor(run, runId, attempt, actor) ?? new NotFoundError('run', runId);
  }

  /**
   * Run a one-statement change (direct-transition.ts). Other instances learn of it from a
   * NOTIFY in the same statement, when one is due; null when the full path must decide.
   */
  async function applyDirect(
    apply: (notify: string | null) => Promise<DirectResult | null>,
  ): Promise<DirectResult | null> {
    const notification = changeLog.offerNotification();
    let direct: DirectResult | null;
    try {
      direct = await apply(notification?.payload ?? null);
    } catch (error) {
      if (notification) changeLog.notificationFailed(notification.at);
      throw error;
    }
    if (direct) changeLog.committed(direct.changes, notification?.at);
    else if (notification) changeLog.notificationSent(notification.at);
    return direct;
  }

  const directGroups = createDirectGroups({
    applyOne: (request, actor, withRun) =>
      applyDirect((notify) => applyDirectly(db, request, actor, notify, withRun)),
    // Parents locked first, as the full path locks: a cycle with another statement is broken by
    // PostgreSQL, and the statement is simply run again.
    applyMany: (requests, actor, withRun) =>
      applyDirect((notify) =>
        retryOnDeadlock(() => applyDirectlyBatch(db, requests, actor, notify, withRun)),
      ),
  });

  async function applyOne(
    request: TransitionRequest,
    actor: Actor,
    answer: OutcomeReads = { run: true },
  ): Promise<TransitionOutcome> {
    // The common change in one statement (with others that came with it); anything it leaves
    // goes the full way.
    if (mayApplyDirectly(request)) {
      const direct = await directGroups.apply(request, actor, answer.run);
      if (direct) return direct.outcomes[0]!;
    }
    return (await applyRequests([request], actor))[0]!;
  }

  /**
   * A batch of common changes, each to another run, in one statement (all or none); otherwise,
   * or when one of them needs more, the full path decides the whole batch.
   */
  async function applyBatch(
    requests: TransitionRequest[],
    actor: Actor,
    answer: OutcomeReads = { run: true },
  ): Promise<TransitionOutcome[]> {
    if (requests.length === 1) return [await applyOne(requests[0]!, actor, answer)];
    const distinct = new Set(requests.map((r) => r.id)).size === requests.length;
    if (distinct && requests.length > 1 && requests.every(mayApplyDirectly)) {
      // It locks parents first, as the full path does; a cycle with another batch is broken by
      // PostgreSQL, and the statement is simply run again.
      const direct = await applyDirect((notify) =>
        retryOnDeadlock(() => applyDirectlyBatch(db, requests, actor, notify, answer.run)),
      );
      if (direct) return direct.outcomes;
    }
    return applyRequests(requests, actor);
  }

  function publishCommitted(changes: readonly StatusChangeRow[], runsChanged: readonly RunRow[]) {
    if (changes.length > 0) changeLog.committed(changes);
    for (const run of runsChanged) {
      runUpdates.publish(run);
      runSignal.runChanged(run.id);
    }
  }

  return {
    createRun(input, actor) {
      return createRun({ db, publishCommitted }, input, actor);
    },

    transitionRun(input, actor, answer) {
      return applyOne(toRequest(input, 'input'), actor, answer);
    },

    transitionRuns(inputs, actor, answer) {
      checkListLength('inputs', inputs, LIMITS.transitionsPerBatch);
      return applyBatch(
        inputs.map((input, i) => toRequest(input, `inputs[${i}]`)),
        actor,
        answer,
      );
    },

    stopRun(id, message, actor) {
      return applyOne(
        {
          ...emptyRequest(checkUuid('id', id), 'STOPPING'),
          message: checkOptionalString('message', message, { max: LIMITS.messageLength }),
          reason: 'STOP_REQUESTED',
          resolveTo: stopTarget,
          stopsChildren: true,
        },
        actor,
      );
    },

    retryRun(id, reason, actor) {
      return applyOne(
        {
          ...emptyRequest(checkUuid('id', id), 'RETRYING'),
          reason: checkOptionalString('reason', reason, { max: LIMITS.reasonLength }) ?? 'RETRY',
        },
        actor,
      );
    },

    async reapOverdueRuns({ stopTimeoutSeconds }) {
      const { now, runs: candidates } = await store.findDeadlineCandidates(db, {
        stopTimeoutSeconds,
        limit: 200,
        running: RUNNING_STATUSES,
        waiting: WAITING_STATUSES,
      });
      // The policy decides; the SQL only found the runs a deadline may have passed for.
      const overdue = candidates.flatMap((run) => {
        const deadline = deadlineFor(run, now, stopTimeoutSeconds);
        return deadline ? [{ run, deadline }] : [];
      });
      if (overdue.length === 0) return 0;
      const outcomes = await applyRequests(
        overdue.map(({ run, deadline }) => ({
          ...emptyRequest(run.id, deadline.to),
          reason: deadline.reason,
          expectedRevision: run.revision,
        })),
        UNRESTRICTED,
      );
      return outcomes.filter((o) => o.kind === 'accepted' && o.change).length;
    },

    resumeRun(id, reason, actor) {
      return applyOne(
        {
          ...emptyRequest(checkUuid('id', id), 'RESUMING'),
          reason: checkOptionalString('reason', reason, { max: LIMITS.reasonLength }) ?? 'RESUME',
        },
        actor,
      );
    },

    async reportProgress(id, progress, phase, attempt, actor) {
      const runId = checkUuid('input.id', id);
      checkFiniteInRange('input.progress', progress, 0, 1);
      const checkedPhase =
        phase === undefined
          ? undefined
          : checkOptionalString('input.phase', phase, { max: LIMITS.phaseLength });
      const run = await store.updateProgress(db, runId, progress, checkedPhase, {
        attempt: attempt ?? null,
        projects: actor.projects,
      });
      if (!run) throw await missingOrStale(runId, attempt, actor);
      publishCommitted([], [run]);
      return run;
    },

    async updateRun(input, actor) {
      const runId = checkUuid('input.id', input.id);
      const update = checkRunUpdate(input);
      const expectedRevision =
        input.expectedRevision == null
          ? null
          : checkIntInRange('input.expectedRevision', input.expectedRevision, 1, 2 ** 53 - 1);
      const only = { projects: actor.projects, expectedRevision };
      // Nothing written: say why. Without expectedRevision a run that changed between the two
      // statements is updated again; what still does not fit (as PostgreSQL prints the merged
      // JSON, a little larger than JSON.stringify) is too large.
      for (let tries = 0; tries < 3; tries++) {
        const run = await store.updateRunRecord(db, runId, update, only, LIMITS.attributesBytes);
        if (run) {
          publishCommitted([], [run]);
          return run;
        }
        const current = await store.getRunById(db, runId);
        if (!current || !canSeeProject(actor, current.project))
          throw new NotFoundError('run', runId);
        if (expectedRevision != null && current.revision !== expectedRevision)
          throw new RevisionConflictError(runId, expectedRevision, current.revision);
        if (!fitsAttributes(current, update)) break;
      }
      throw new BadUserInputError(
        'input.attributes',
        `would make the run's attributes larger than ${LIMITS.attributesBytes} bytes as JSON`,
      );
    },

    async deleteRun(id, actor) {
      const runId = checkUuid('id', id);
      // Its locks (parents first) can still meet a cascade's in a cycle: run it again then.
      return retryOnDeadlock(() =>
        db.transaction(async (tx) => {
          const run = await store.getRunById(tx, runId);
          if (!run || !canSeeProject(actor, run.project)) throw new NotFoundError('run', runId);
          const { deleted, refusal } = await deleteRunTrees(tx, [runId], false);
          if (refusal?.kind === 'notDone') {
            throw new BadUserInputError(
              'id',
              `run ${refusal.runId}${refusal.runId === runId ? '' : ', a step of this run,'} is ` +
                `${refusal.status}: only a run that is done, with all its steps, can be deleted`,
            );
          }
          if (refusal?.kind === 'awaited') {
            throw new BadUserInputError(
              'id',
              `run ${refusal.downstreamId} still waits for run ${refusal.runId}: delete it first, ` +
                'or wait until it is done',
            );
          }
          return deleted > 0;
        }),
      );
    },

    async heartbeat(id, attempt, actor) {
      const runId = checkUuid('id', id);
      const only = { attempt: attempt ?? null, projects: actor.projects };
      // Twice at most: a done run may be resumed or retried between the two statements.
      for (let tries = 0; ; tries++) {
        const run = await store.touchHeartbeat(db, runId, only);
        if (run) {
          publishCommitted([], [run]);
          return run;
        }
        const current = await store.getRunById(db, runId);
        const refusal = refusalFor(current, runId, attempt, actor);
        if (refusal || !current) throw refusal ?? new NotFoundError('run', runId);
        // Done: a beat that crossed the run's end (a worker's timer, a late request) changes
        // nothing, and the worker learns from the answer that the run is over.
        if (isDone(current.status) || tries > 0) return current;
      }
    },
  };
}

function toRequest(input: TransitionInput, field: string): TransitionRequest {
  if (input.expectedVersion != null && input.expectedVersion < 1) {
    throw new BadUserInputError(`${field}.expectedVersion`, 'must be at least 1');
  }
  if (input.attempt != null && input.attempt < 1) {
    throw new BadUserInputError(`${field}.attempt`, 'must be at least 1');
  }
  if (input.force === true && !input.reason?.trim()) {
    throw new BadUserInputError(`${field}.reason`, 'is required with force');
  }
  return {
    id: checkUuid(`${field}.id`, input.id),
    ...targetOfInput(input, field),
    attempt: input.attempt ?? null,
    force: input.force === true,
    reason: checkOptionalString(`${field}.reason`, input.reason, { max: LIMITS.reasonLength }),
    message: checkOptionalString(`${field}.message`, input.message, { max: LIMITS.messageLength }),
    expectedStatus: input.expectedStatus ?? null,
    expectedVersion: input.expectedVersion ?? null,
    ...checkReport(input, field),
    field,
    idempotencyKey: scopeIdempotencyKey(
      checkOptionalString(`${field}.idempotencyKey`, input.idempotencyKey, {
        min: 1,
        max: LIMITS.idempotencyKeyLength,
      }),
      input.attempt ?? null,
    ),
  };
}

/** An updateRun input checked: what it replaces, and the attributes it sets and removes. */
function checkRunUpdate(input: UpdateRunInput): store.RunRecordUpdate {
  const update: store.RunRecordUpdate = {};
  if (input.name !== undefined) {
    update.name = checkOptionalString('input.name', input.name, {
      min: 1,
      max: LIMITS.nameLength,
    });
  }
  if (input.tags !== undefined) update.tags = checkTags('input.tags', input.tags ?? []);
  if (input.meta !== undefined) {
    update.meta = input.meta === null ? null : checkJsonObject('input.meta', input.meta);
  }
  if (input.attributes != null) {
    const patch = checkJsonObject('input.attributes', input.attributes, LIMITS.attributesBytes);
    update.attributesSet = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== null));
    update.attributesRemoved = Object.keys(patch).filter((key) => patch[key] === null);
  }
  if (Object.keys(update).length === 0) {
    throw new BadUserInputError('input', 'give at least one of name, tags, meta and attributes');
  }
  return update;
}

/** Whether the run's attributes, updated, stay within the limit (as the database measures). */
function fitsAttributes(run: RunRow, update: store.RunRecordUpdate): boolean {
  const merged: Record<string, unknown> = { ...run.attributes, ...update.attributesSet };
  for (const key of update.attributesRemoved ?? []) delete merged[key];
  return Buffer.byteLength(JSON.stringify(merged), 'utf8') <= LIMITS.attributesBytes;
}

/** What a transition records beside its status: outcome, exit code, meta, and when. */
function checkReport(
  input: TransitionInput,
  field: string,
): Pick<TransitionRequest, 'outcome' | 'exitCode' | 'meta' | 'at'> {
  return {
    outcome: checkOptionalString(`${field}.outcome`, input.outcome, {
      min: 1,
      max: LIMITS.outcomeLength,
    }),
    exitCode:
      input.exitCode == null
        ? null
        : checkIntInRange(`${field}.exitCode`, input.exitCode, -(2 ** 31), 2 ** 31 - 1),
    meta:
      input.meta == null
        ? null
        : checkJsonObject(`${field}.meta`, input.meta, LIMITS.changeMetaBytes),
    at: input.at == null ? null : checkReportedTime(`${field}.at`, input.at),
  };
}

/**
 * `to`, or a native name: exactly one. A name in an explicit dialect is checked at once; one in
 * the run's own dialect once the run is read (policy.ts resolveRequest).
 */
function targetOfInput(
  input: TransitionInput,
  field: string,
): Pick<TransitionRequest, 'to' | 'native'> {
  if (input.to != null && input.native != null) {
    throw new BadUserInputError(`${field}.native`, 'give either `to` or `native`, not both');
  }
  if (input.native != null) {
    const spelling = checkOptionalString(`${field}.native`, input.native, {
      min: 1,
      max: LIMITS.reasonLength,
    })!;
    const native = { spelling, dialect: input.dialect ?? null, field: `${field}.native` };
    if (native.dialect != null) checkNativeName(native.dialect, spelling, native.field);
    // `to` is decided under the run's lock, in its dialect; until then it holds no meaning.
    return { to: 'CREATED', native };
  }
  if (input.to == null) {
    throw new BadUserInputError(`${field}.to`, 'give `to` (a RunStatus) or `native` (a name)');
  }
  if (input.dialect != null) {
    throw new BadUserInputError(`${field}.dialect`, 'names the dialect of `native`: give `native`');
  }
  return { to: input.to };
}

/** The lifecycle's allowed next statuses for a run (used by resolvers). */
export function allowedNextFor(run: RunRow): readonly RunStatus[] {
  return getStatusInfo(run.status).allowedNext;
}
