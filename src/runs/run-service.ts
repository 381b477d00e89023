import type { Db } from '../db/client.js';
import type { RunRow, StatusChangeRow, TriggerPolicy } from '../db/schema.js';
import { BadUserInputError, getPgErrorCode, NotFoundError, StaleAttemptError } from '../errors.js';
import type { RunstateEvents } from '../events/topics.js';
import {
  getStatusesInCategories,
  getStatusInfo,
  isDone,
  type RunStatus,
  type StatusCategory,
} from '../lifecycle/lifecycle.js';
import {
  checkFiniteInRange,
  checkIntInRange,
  checkJsonObject,
  checkListLength,
  checkOptionalString,
  checkString,
  checkUuid,
  LIMITS,
} from '../validation.js';
import {
  combineDecisions,
  evaluateEvents,
  evaluateTrigger,
  statusesOfEventKind,
  type EventTriggerState,
  type RunEventKind,
  type UpstreamState,
} from './dependency-rules.js';
import * as store from './run-store.js';
import {
  applyTransition,
  decideTransition,
  planChanges,
  targetOf,
  type ConflictDetails,
  type TransitionRequest,
} from './transition-rules.js';

export type { TransitionRequest } from './transition-rules.js';

/** The answer to one requested change; `__typename` names the GraphQL result type. */
export type TransitionOutcome =
  | { __typename: 'TransitionAccepted'; run: RunRow; change: StatusChangeRow | null }
  | {
      __typename: 'IllegalTransition';
      runId: string;
      from: RunStatus;
      to: RunStatus;
      allowed: RunStatus[];
      message: string;
    }
  | ({ __typename: 'TransitionConflict'; runId: string } & ConflictDetails)
  | { __typename: 'RunNotFound'; runId: string; message: string };

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
}

export interface TransitionInput {
  id: string;
  to: RunStatus;
  reason?: string | null;
  message?: string | null;
  expectedStatus?: RunStatus | null;
  expectedVersion?: number | null;
  idempotencyKey?: string | null;
  attempt?: number | null;
  /** An administrator's correction; a reason is required. */
  force?: boolean | null;
}

export interface RunService {
  createRun(input: CreateRunInput): Promise<RunRow>;
  transitionRun(input: TransitionInput): Promise<TransitionOutcome>;
  /** Each applied on its own, in order, in one transaction. */
  transitionRuns(inputs: readonly TransitionInput[]): Promise<TransitionOutcome[]>;
  /** STOPPED if the run was not handed to an executor yet, else STOPPING (a stop request). */
  stopRun(id: string, message: string | null | undefined): Promise<TransitionOutcome>;
  /** RETRYING with the next attempt (from FAILED or UNKNOWN, as the lifecycle allows). */
  retryRun(id: string, reason: string | null | undefined): Promise<TransitionOutcome>;
  /** RESUMING (from STOPPED, FAILED or SUSPENDED, as the lifecycle allows). */
  resumeRun(id: string, reason: string | null | undefined): Promise<TransitionOutcome>;
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
    attempt?: number | null,
  ): Promise<RunRow>;
  /** With `attempt`, a zombie worker's heartbeat cannot keep a retried run alive. */
  heartbeat(id: string, attempt?: number | null): Promise<RunRow>;
}

/** Statuses matching both a status list and a category list; null when neither is given. */
export function resolveStatusFilter(
  statuses: readonly RunStatus[] | null | undefined,
  categories: readonly StatusCategory[] | null | undefined,
): RunStatus[] | null {
  if (statuses == null && categories == null) return null;
  const fromCategories = categories == null ? null : new Set(getStatusesInCategories(categories));
  const base = statuses ?? [...(fromCategories ?? [])];
  return [...new Set(base)].filter((s) => fromCategories == null || fromCategories.has(s));
}

export interface RunServiceDeps {
  db: Db;
  events: RunstateEvents;
  /**
   * Told after every commit that appended to the change log. Status changes reach subscribers
   * (statusChanged, and runUpdated for status) only through the change-log tail, on every
   * instance alike; they are never published from here.
   */
  changeLog: { committed(): void };
  /** Passes progress and heartbeat updates on to the other instances (events/run-signal.ts). */
  runSignal: { runChanged(runId: string): void };
}

/** Statuses of a run not yet handed to an executor (lifecycle rule 8): a stop ends it at once. */
const NOT_HANDED_ON: ReadonlySet<RunStatus> = new Set([
  'CREATED',
  'ON_SCHEDULE',
  'COMPILED',
  'QUEUED',
  'RESUMING',
  'RETRYING',
]);

/**
 * Apply a waiting run's trigger policy to its upstreams' states: QUEUED when met, UPSTREAM_FAILED
 * (or SKIPPED) when it never can be, else only its blockedReason changes. Pure.
 */
function decideDownstream(
  run: RunRow,
  upstreams: readonly UpstreamState[],
  events: readonly EventTriggerState[],
  at: Date,
): { run: RunRow; changes: store.NewStatusChange[] } {
  const decision = combineDecisions(
    run.trigger ? evaluateTrigger(run.trigger, upstreams, run.skipOnUpstreamSkip) : null,
    events.length > 0 ? evaluateEvents(events) : null,
  );
  if (decision.kind === 'wait') {
    return { run: { ...run, blockedReason: decision.reason }, changes: [] };
  }
  const to = decision.kind === 'start' ? 'QUEUED' : decision.to;
  const message = decision.kind === 'start' ? null : decision.message;
  const next = {
    ...applyTransition(run, to, at, message),
    blockedReason: decision.kind === 'start' ? null : decision.message,
  };
  return {
    run: next,
    changes: [
      {
        runId: run.id,
        project: run.project,
        fromStatus: run.status,
        toStatus: to,
        version: next.version,
        reason: decision.reason,
        message,
        at,
      },
    ],
  };
}

/**
 * Keys are per run, and per attempt when the worker says which attempt it reports for: the
 * next attempt reusing a key ("start", "done") must not get the previous attempt's answer.
 */
function scopeIdempotencyKey(key: string | null, attempt: number | null): string | null {
  if (key == null) return null;
  return attempt == null ? `run:${key}` : `attempt ${attempt}:${key}`;
}

/** Event triggers, checked; several entries for one ref are merged. */
function checkEventTriggers(
  input: readonly { ref: string; kinds: readonly RunEventKind[] }[] | null | undefined,
): { refId: string; kinds: string[]; statuses: string[] }[] {
  const byRef = new Map<string, Set<RunEventKind>>();
  checkListLength('input.events', input ?? [], LIMITS.eventTriggers).forEach((trigger, i) => {
    const refId = checkUuid(`input.events[${i}].ref`, trigger.ref);
    checkListLength(`input.events[${i}].kinds`, trigger.kinds, 22, 1);
    const kinds = byRef.get(refId) ?? new Set<RunEventKind>();
    for (const kind of trigger.kinds) kinds.add(kind);
    byRef.set(refId, kinds);
  });
  return [...byRef].map(([refId, kinds]) => ({
    refId,
    kinds: [...kinds],
    statuses: [...new Set([...kinds].flatMap(statusesOfEventKind))],
  }));
}

const DEADLOCK_DETECTED = '40P01';

async function retryOnDeadlock<T>(work: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if (attempt >= 4 || getPgErrorCode(error) !== DEADLOCK_DETECTED) throw error;
    }
  }
}

function emptyRequest(id: string, to: RunStatus): TransitionRequest {
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

export function createRunService(deps: RunServiceDeps): RunService {
  const { db, events, changeLog, runSignal } = deps;

  async function applyRequests(requests: TransitionRequest[]): Promise<TransitionOutcome[]> {
    if (requests.length === 0) return [];
    // A cascade locks downstream runs after the batch's own: rare lock cycles between batches
    // are broken by PostgreSQL (deadlock_detected); the whole batch is then simply run again.
    const result = await retryOnDeadlock(() =>
      db.transaction((tx) => runTransitionBatch(tx, requests)),
    );
    publishCommitted(result.changes, []);
    return result.outcomes;
  }

  /** Why an update found no row: no such run, or the run is at another attempt. */
  async function missingOrStale(runId: string, attempt: number | null | undefined) {
    const run = attempt == null ? null : await store.getRunById(db, runId);
    return run
      ? new StaleAttemptError(runId, run.attempt, attempt!)
      : new NotFoundError('run', runId);
  }

  async function applyOne(request: TransitionRequest): Promise<TransitionOutcome> {
    return (await applyRequests([request]))[0]!;
  }

  function publishCommitted(changes: readonly StatusChangeRow[], runsChanged: readonly RunRow[]) {
    if (changes.length > 0) changeLog.committed();
    for (const run of runsChanged) {
      events.publish('runUpdated', run.id, run);
      runSignal.runChanged(run.id);
    }
  }

  return {
    async createRun(input) {
      const values: store.NewRun = {
        project: checkString('input.project', input.project, { min: 1, max: LIMITS.projectLength }),
        name: checkOptionalString('input.name', input.name, { min: 1, max: LIMITS.nameLength }),
        tags: [
          ...new Set(
            checkListLength('input.tags', input.tags ?? [], LIMITS.tags).map((tag, i) =>
              checkString(`input.tags[${i}]`, tag, { min: 1, max: LIMITS.tagLength }),
            ),
          ),
        ],
        meta: input.meta == null ? null : checkJsonObject('input.meta', input.meta),
        idempotencyKey: checkOptionalString('input.idempotencyKey', input.idempotencyKey, {
          min: 1,
          max: LIMITS.idempotencyKeyLength,
        }),
        maxRetries:
          input.maxRetries == null
            ? 0
            : checkIntInRange('input.maxRetries', input.maxRetries, 0, LIMITS.maxRetries),
        trigger: null,
        skipOnUpstreamSkip: input.skipOnUpstreamSkip ?? false,
        cacheKey: checkOptionalString('input.cacheKey', input.cacheKey, {
          min: 1,
          max: LIMITS.idempotencyKeyLength,
        }),
        heartbeatTimeout:
          input.heartbeatTimeout == null
            ? null
            : checkIntInRange(
                'input.heartbeatTimeout',
                input.heartbeatTimeout,
                1,
                LIMITS.timeoutSeconds,
              ),
        queueTimeout:
          input.queueTimeout == null
            ? null
            : checkIntInRange('input.queueTimeout', input.queueTimeout, 1, LIMITS.timeoutSeconds),
      };
      const dependsOn = [
        ...new Set(
          checkListLength('input.dependsOn', input.dependsOn ?? [], LIMITS.dependencies).map(
            (id, i) => checkUuid(`input.dependsOn[${i}]`, id),
          ),
        ),
      ];
      if (dependsOn.length > 0) values.trigger = input.trigger ?? 'ALL_SUCCEEDED';
      else if (input.trigger != null)
        throw new BadUserInputError('input.trigger', 'needs dependsOn');
      const events = checkEventTriggers(input.events);

      // Share-locking upstreams can lose a deadlock against a cascade locking downstream runs
      // (a DAG with a transitive edge); run again then (an idempotent replay stays one run).
      const created = await retryOnDeadlock(() =>
        db.transaction(async (tx) => {
          // Upstreams first (share-locked): their state decides this run's, and none may finish
          // unseen between our read and our commit.
          const locked = await store.lockUpstreamsForCreate(tx, [
            ...new Set([...dependsOn, ...events.map((e) => e.refId)]),
          ]);
          const found = new Set(locked.map((u) => u.id));
          const missing = dependsOn.findIndex((id) => !found.has(id));
          if (missing >= 0)
            throw new BadUserInputError(`input.dependsOn[${missing}]`, 'no such run');
          const missingRef = events.findIndex((e) => !found.has(e.refId));
          if (missingRef >= 0) {
            throw new BadUserInputError(`input.events[${missingRef}].ref`, 'no such run');
          }
          const upstreams = locked.filter((u) => dependsOn.includes(u.id));

          const inserted = await store.insertRun(tx, values);
          if (!inserted) return null;
          await store.insertDependencies(tx, inserted.id, dependsOn);
          await store.insertEventTriggers(tx, inserted.id, events);
          const changes: store.NewStatusChange[] = [
            {
              runId: inserted.id,
              project: inserted.project,
              fromStatus: null,
              toStatus: inserted.status,
              version: inserted.version,
              reason: 'CREATED',
              message: null,
              at: inserted.createdAt,
            },
          ];
          let run = inserted;
          const memo = values.cacheKey
            ? await store.findMemoizedRun(tx, values.project, values.cacheKey)
            : null;
          if (memo) {
            // Parsl's memo_done: the result exists already, nothing needs to run.
            const message = `memoized from run ${memo.id}`;
            const skipped = applyTransition(run, 'SKIPPED', run.createdAt, message);
            changes.push({
              runId: run.id,
              project: run.project,
              fromStatus: run.status,
              toStatus: 'SKIPPED',
              version: skipped.version,
              reason: 'MEMOIZED',
              message,
              at: run.createdAt,
            });
            run = { ...skipped, memoizedFrom: memo.id };
            await store.updateRunStates(tx, [run]);
            await store.setMemoizedFrom(tx, run.id, memo.id);
          } else if (values.trigger || events.length > 0) {
            const eventStates =
              events.length > 0 ? await store.listEventTriggerStates(tx, [run.id]) : [];
            const decided = decideDownstream(run, upstreams, eventStates, run.createdAt);
            run = decided.run;
            changes.push(...decided.changes);
            await store.updateRunStates(tx, [run]);
          }
          return { run, changes: await store.insertStatusChanges(tx, changes) };
        }),
      );
      if (created) {
        publishCommitted(created.changes, []);
        return created.run;
      }
      // A replay of createRun: the first run, nothing created. The key is unique per project.
      const existing = await store.getRunByIdempotencyKey(
        db,
        values.project,
        values.idempotencyKey!,
      );
      if (!existing) throw new Error('idempotent createRun found no run for its key');
      return existing;
    },

    transitionRun(input) {
      return applyOne(toRequest(input, 'input'));
    },

    transitionRuns(inputs) {
      checkListLength('inputs', inputs, LIMITS.transitionsPerBatch);
      return applyRequests(inputs.map((input, i) => toRequest(input, `inputs[${i}]`)));
    },

    stopRun(id, message) {
      return applyOne({
        ...emptyRequest(checkUuid('id', id), 'STOPPING'),
        message: checkOptionalString('message', message, { max: LIMITS.messageLength }),
        reason: 'STOP_REQUESTED',
        resolveTo: (run) => (NOT_HANDED_ON.has(run.status) ? 'STOPPED' : 'STOPPING'),
      });
    },

    retryRun(id, reason) {
      return applyOne({
        ...emptyRequest(checkUuid('id', id), 'RETRYING'),
        reason: checkOptionalString('reason', reason, { max: LIMITS.reasonLength }) ?? 'RETRY',
      });
    },

    async reapOverdueRuns({ stopTimeoutSeconds }) {
      const overdue = await store.findOverdueRuns(db, {
        stopTimeoutSeconds,
        limit: 200,
        running: getStatusesInCategories(['RUNNING']),
        waiting: getStatusesInCategories(['PENDING', 'QUEUED']),
      });
      if (overdue.length === 0) return 0;
      const outcomes = await applyRequests(
        overdue.map((run) => ({
          ...emptyRequest(run.id, run.to),
          reason: run.reason,
          expectedRevision: run.revision,
        })),
      );
      return outcomes.filter((o) => o.__typename === 'TransitionAccepted' && o.change).length;
    },

    resumeRun(id, reason) {
      return applyOne({
        ...emptyRequest(checkUuid('id', id), 'RESUMING'),
        reason: checkOptionalString('reason', reason, { max: LIMITS.reasonLength }) ?? 'RESUME',
      });
    },

    async reportProgress(id, progress, phase, attempt) {
      const runId = checkUuid('input.id', id);
      checkFiniteInRange('input.progress', progress, 0, 1);
      const checkedPhase =
        phase === undefined
          ? undefined
          : checkOptionalString('input.phase', phase, { max: LIMITS.phaseLength });
      const run = await store.updateProgress(db, runId, progress, checkedPhase, attempt ?? null);
      if (!run) throw await missingOrStale(runId, attempt);
      publishCommitted([], [run]);
      return run;
    },

    async heartbeat(id, attempt) {
      const runId = checkUuid('id', id);
      const run = await store.touchHeartbeat(db, runId, attempt ?? null);
      if (!run) throw await missingOrStale(runId, attempt);
      publishCommitted([], [run]);
      return run;
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
    to: input.to,
    attempt: input.attempt ?? null,
    force: input.force === true,
    reason: checkOptionalString(`${field}.reason`, input.reason, { max: LIMITS.reasonLength }),
    message: checkOptionalString(`${field}.message`, input.message, { max: LIMITS.messageLength }),
    expectedStatus: input.expectedStatus ?? null,
    expectedVersion: input.expectedVersion ?? null,
    idempotencyKey: scopeIdempotencyKey(
      checkOptionalString(`${field}.idempotencyKey`, input.idempotencyKey, {
        min: 1,
        max: LIMITS.idempotencyKeyLength,
      }),
      input.attempt ?? null,
    ),
  };
}

interface BatchResult {
  outcomes: TransitionOutcome[];
  changes: StatusChangeRow[];
  changedRuns: RunRow[];
}

type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];

/**
 * Apply requests in order, each on its own, in one transaction: lock every touched run (id
 * order), decide each request against the run as the previous requests left it, then write all
 * new run states, history rows and idempotency records with one statement each.
 */
async function runTransitionBatch(tx: Tx, requests: TransitionRequest[]): Promise<BatchResult> {
  const ids = [...new Set(requests.map((r) => r.id))];
  const locked = await store.lockRunsForTransition(tx, ids);
  const state = new Map(locked.rows.map((run) => [run.id, run]));
  const changedIds = new Set<string>();

  const keyed = requests.filter((r) => r.idempotencyKey != null && state.has(r.id));
  const stored = await store.findTransitionKeys(
    tx,
    keyed.map((r) => ({ runId: r.id, key: r.idempotencyKey! })),
  );
  /** key → index of the first request with it in this batch, or the stored answer. */
  const seenKeys = new Map<string, { index: number } | { stored: store.StoredTransitionKey }>(
    stored.map((s) => [keyOf(s.runId, s.key), { stored: s }]),
  );

  // `run` is the run right after the request was applied: "the run after the change", even
  // when later requests of the batch change it again.
  type Pending =
    | { kind: 'done'; outcome: TransitionOutcome }
    | { kind: 'change'; changes: store.NewStatusChange[]; run: RunRow }
    | { kind: 'noop'; run: RunRow }
    | { kind: 'replayIndex'; index: number }
    | { kind: 'replayStored'; stored: store.StoredTransitionKey };
  const pending: Pending[] = [];
  const newKeys: { runId: string; key: string; index: number }[] = [];

  requests.forEach((request, index) => {
    const run = state.get(request.id);
    if (!run) {
      pending.push({
        kind: 'done',
        outcome: {
          __typename: 'RunNotFound',
          runId: request.id,
          message: `run ${request.id} not found`,
        },
      });
      return;
    }
    // A stale attempt is refused before any replay: an idempotency key reused by the next
    // attempt must not return the previous attempt's answer.
    if (request.attempt != null && request.attempt !== run.attempt) {
      const { kind: _kind, ...rest } = decideTransition(run, request) as Extract<
        ReturnType<typeof decideTransition>,
        { kind: 'conflict' }
      >;
      pending.push({
        kind: 'done',
        outcome: { __typename: 'TransitionConflict', runId: run.id, ...rest },
      });
      return;
    }
    if (request.idempotencyKey != null) {
      const key = keyOf(run.id, request.idempotencyKey);
      const seen = seenKeys.get(key);
      if (seen) {
        pending.push(
          'index' in seen
            ? { kind: 'replayIndex', index: seen.index }
            : { kind: 'replayStored', stored: seen.stored },
        );
        return;
      }
      seenKeys.set(key, { index });
      newKeys.push({ runId: run.id, key: request.idempotencyKey, index });
    }
    const decision = decideTransition(run, request);
    switch (decision.kind) {
      case 'noop':
        pending.push({ kind: 'noop', run });
        return;
      case 'conflict': {
        const { kind: _kind, ...rest } = decision;
        pending.push({
          kind: 'done',
          outcome: { __typename: 'TransitionConflict', runId: run.id, ...rest },
        });
        return;
      }
      case 'illegal': {
        const { kind: _kind, ...rest } = decision;
        pending.push({
          kind: 'done',
          outcome: { __typename: 'IllegalTransition', runId: run.id, ...rest },
        });
        return;
      }
      case 'apply': {
        // Each planned change (a failure may become FAILED then RETRYING) is its own version.
        let current = run;
        const changes: store.NewStatusChange[] = [];
        // now() is when the transaction started; one that waited for the lock may have started
        // before the change it waited for. A run's times never go backwards.
        const at = new Date(Math.max(locked.now.getTime(), run.updatedAt.getTime()));
        for (const step of planChanges(run, targetOf(run, request), request)) {
          const next = applyTransition(current, step.to, at, step.message);
          changes.push({
            runId: run.id,
            project: run.project,
            fromStatus: current.status,
            toStatus: next.status,
            version: next.version,
            reason: step.reason,
            message: step.message,
            at,
            forced: request.force === true,
          });
          current = next;
        }
        state.set(run.id, current);
        changedIds.add(run.id);
        pending.push({ kind: 'change', run: current, changes });
      }
    }
  });

  const lockedRevision = new Map(locked.rows.map((r) => [r.id, r.revision]));
  const cascaded = await cascadeToDownstreams(
    tx,
    state,
    changedIds,
    lockedRevision,
    locked.now,
    pending.flatMap((p) => (p.kind === 'change' ? p.changes : [])),
  );

  // One write per changed run, whatever the number of its changes in the batch.
  for (const id of changedIds) {
    state.set(id, { ...state.get(id)!, revision: lockedRevision.get(id)! + 1 });
  }
  const changedRuns = [...changedIds].map((id) => state.get(id)!);
  await store.updateRunStates(tx, changedRuns);
  const inserted = await store.insertStatusChanges(tx, [
    ...pending.flatMap((p) => (p.kind === 'change' ? p.changes : [])),
    ...cascaded,
  ]);
  const insertedByVersion = new Map(inserted.map((c) => [keyOf(c.runId, String(c.version)), c]));
  const storedChangeIds = pending.flatMap((p) =>
    p.kind === 'replayStored' && p.stored.changeId != null ? [p.stored.changeId] : [],
  );
  const replayedChanges = new Map(
    (await store.getStatusChangesByIds(tx, storedChangeIds)).map((c) => [c.id, c]),
  );

  // A replay answers the first answer again; one from an earlier request shows the run now.
  const outcomes: TransitionOutcome[] = [];
  const resolve = (p: Pending, runId: string): TransitionOutcome => {
    switch (p.kind) {
      case 'done':
        return p.outcome;
      case 'noop':
        return { __typename: 'TransitionAccepted', run: p.run, change: null };
      case 'change': {
        // The answer shows the status actually written last (RETRYING for a retried failure).
        const last = p.changes.at(-1)!;
        return {
          __typename: 'TransitionAccepted',
          run: p.run,
          change: insertedByVersion.get(keyOf(last.runId, String(last.version)))!,
        };
      }
      case 'replayIndex':
        return outcomes[p.index]!;
      case 'replayStored':
        return fromStored(p.stored, state.get(runId)!, replayedChanges);
    }
  };
  pending.forEach((p, i) => outcomes.push(resolve(p, requests[i]!.id)));

  await store.insertTransitionKeys(
    tx,
    newKeys.map(({ runId, key, index }) => {
      const outcome = outcomes[index]!;
      return {
        runId,
        key,
        changeId: outcome.__typename === 'TransitionAccepted' ? (outcome.change?.id ?? null) : null,
        outcome: toStoredOutcome(outcome),
      };
    }),
  );

  return { outcomes, changes: inserted, changedRuns };
}

/**
 * The server's decisions caused by this batch, in its transaction: every run waiting on a run
 * that just finished is locked, its upstreams are read (after the lock, so a concurrent
 * transaction that finished another upstream is seen once it committed), and its trigger policy
 * applied. A run failing upstream finishes too, so the failure cascades level by level through
 * the whole downstream graph. Two upstreams finishing at once queue their shared downstream
 * exactly once: its lock orders them, and the second sees the first's commit.
 */
async function cascadeToDownstreams(
  tx: Tx,
  state: Map<string, RunRow>,
  changedIds: Set<string>,
  lockedRevision: Map<string, number>,
  now: Date,
  batchChanges: readonly store.NewStatusChange[],
): Promise<store.NewStatusChange[]> {
  const changes: store.NewStatusChange[] = [];
  // Statuses entered in this (not yet written) batch: events the log does not show yet.
  const entered = new Map<string, Set<string>>();
  const noteEntered = (c: store.NewStatusChange) => {
    const set = entered.get(c.runId) ?? new Set<string>();
    set.add(c.toStatus);
    entered.set(c.runId, set);
  };
  batchChanges.forEach(noteEntered);

  let moved = [...entered.keys()];
  while (moved.length > 0) {
    const finished = moved.filter((id) => isDone(state.get(id)!.status));
    const candidates = [
      ...new Set([
        ...(await store.findDownstreamIds(tx, finished)),
        ...(await store.findEventWatcherIds(tx, moved)),
      ]),
    ];
    const locked = await store.lockRunsForTransition(
      tx,
      candidates.filter((id) => !state.has(id)),
    );
    for (const run of locked.rows) {
      state.set(run.id, run);
      lockedRevision.set(run.id, run.revision);
    }
    // Every run not handed on yet is decided: one a scheduler moved on, stopped and resumed,
    // or retried by the reaper still fails upstream when its conditions can never be met.
    const created = candidates
      .map((id) => state.get(id))
      .filter((run): run is RunRow => run != null && NOT_HANDED_ON.has(run.status));
    const ids = created.map((r) => r.id);
    const upstreamRows = await store.listUpstreamStates(tx, ids);
    const eventRows = await store.listEventTriggerStates(tx, ids);
    moved = [];
    for (const run of created) {
      // Our own, not yet written, changes count: read from the batch's state first.
      const upstreams = upstreamRows
        .filter((u) => u.runId === run.id)
        .map((u) => ({ ...u, status: state.get(u.id)?.status ?? u.status }));
      const events = eventRows
        .filter((e) => e.runId === run.id)
        .map((e) => ({
          ...e,
          refStatus: state.get(e.refId)?.status ?? e.refStatus,
          emitted: e.emitted || e.statuses.some((s) => entered.get(e.refId)?.has(s)),
        }));
      if (run.trigger == null && events.length === 0) continue;
      const at = new Date(Math.max(now.getTime(), run.updatedAt.getTime()));
      let decided = decideDownstream(run, upstreams, events, at);
      // Queue only a run that was waiting for this: not one already QUEUED, nor one that a
      // scheduler took over after its conditions were met.
      const queues = decided.changes.some((c) => c.toStatus === 'QUEUED');
      if (
        queues &&
        (run.status === 'QUEUED' || (run.status !== 'CREATED' && run.blockedReason == null))
      ) {
        decided = { run: { ...run, blockedReason: null }, changes: [] };
      }
      if (decided.changes.length === 0 && decided.run.blockedReason === run.blockedReason) continue;
      state.set(run.id, decided.run);
      changedIds.add(run.id);
      changes.push(...decided.changes);
      decided.changes.forEach(noteEntered);
      if (decided.changes.length > 0) moved.push(run.id);
    }
  }
  return changes;
}

function keyOf(runId: string, key: string): string {
  return `${runId}\u0000${key}`;
}

/** What is kept of an answer for replays: everything but the run, which is read fresh. */
function toStoredOutcome(outcome: TransitionOutcome): Record<string, unknown> {
  if (outcome.__typename === 'TransitionAccepted') return { __typename: outcome.__typename };
  return { ...outcome };
}

function fromStored(
  stored: store.StoredTransitionKey,
  run: RunRow,
  changes: Map<number, StatusChangeRow>,
): TransitionOutcome {
  const typename = stored.outcome['__typename'];
  if (typename === 'TransitionAccepted') {
    return {
      __typename: 'TransitionAccepted',
      run,
      change: stored.changeId == null ? null : (changes.get(stored.changeId) ?? null),
    };
  }
  return stored.outcome as TransitionOutcome;
}

/** The lifecycle's allowed next statuses for a run (used by resolvers). */
export function allowedNextFor(run: RunRow): readonly RunStatus[] {
  return getStatusInfo(run.status).allowedNext;
}
