import type { RunRow, StatusChangeRow } from '../db/schema.js';
import { commitWithNextStatement, type Tx } from '../db/client.js';
import type { RunStatus } from '../lifecycle/lifecycle.js';
import { canSeeProject, type Principal } from '../auth/principal.js';
import { cascadeToDownstreams, stopDescendants } from './orchestration.js';
import {
  applyTransition,
  changeOf,
  decideTransition,
  refuseStaleAttempt,
  planChanges,
  requestedChangeTime,
  resolveRequest,
  type ConflictDetails,
  type TransitionRequest,
} from './policy.js';
import * as store from './run-store.js';
import * as changeStore from '../changelog/change-store.js';
import * as keyStore from './transition-key-store.js';

/**
 * One transaction of status changes: lock, decide each request in order, let orchestration
 * decide what they cause, write everything with one statement per table. SQL is in
 * run-store.ts, the rules in transition-rules.ts and orchestration.ts.
 */

/**
 * The answer to one requested change, by `kind`: accepted (with the change, or null when the run
 * already had that status), illegal (the lifecycle does not allow it), conflict (a stale
 * precondition or attempt), notFound. The GraphQL layer names the result types; the kind is
 * also what an idempotency key keeps, so renaming a GraphQL type changes no stored answer.
 */
export type TransitionOutcome =
  | { kind: 'accepted'; run: RunRow; change: StatusChangeRow | null }
  | {
      kind: 'illegal';
      runId: string;
      from: RunStatus;
      to: RunStatus;
      allowed: RunStatus[];
      message: string;
    }
  | ({ kind: 'conflict'; runId: string } & ConflictDetails)
  | { kind: 'notFound'; runId: string; message: string };

export type OutcomeKind = TransitionOutcome['kind'];

/** Who asks for a change: recorded as its actor, and limited to its projects. */
export type Actor = Pick<Principal, 'name' | 'projects'>;

export interface BatchResult {
  outcomes: TransitionOutcome[];
  changes: StatusChangeRow[];
  changedRuns: RunRow[];
}

/**
 * Apply requests in order, each on its own, in one transaction: lock every touched run (id
 * order), decide each request against the run as the previous requests left it, then write all
 * new run states, history rows and idempotency records with one statement each.
 */
export async function runTransitionBatch(
  tx: Tx,
  requests: TransitionRequest[],
  actor: Actor,
): Promise<BatchResult> {
  const ids = [...new Set(requests.map((r) => r.id))];
  const locked = await store.lockRunsForTransition(tx, ids);
  const state = new Map(locked.rows.map((run) => [run.id, run]));
  const changedIds = new Set<string>();

  const keyed = requests.filter((r) => r.idempotencyKey != null && state.has(r.id));
  const stored = await keyStore.findTransitionKeys(
    tx,
    keyed.map((r) => ({ runId: r.id, key: r.idempotencyKey! })),
  );
  /** key → index of the first request with it in this batch, or the stored answer. */
  const seenKeys = new Map<string, { index: number } | { stored: keyStore.StoredTransitionKey }>(
    stored.map((s) => [keyOf(s.runId, s.key), { stored: s }]),
  );

  // `run` is the run right after the request was applied: "the run after the change", even
  // when later requests of the batch change it again.
  type Pending =
    | { kind: 'done'; outcome: TransitionOutcome }
    | { kind: 'change'; changes: changeStore.NewStatusChange[]; run: RunRow }
    | { kind: 'noop'; run: RunRow }
    | { kind: 'replayIndex'; index: number }
    | { kind: 'replayStored'; stored: keyStore.StoredTransitionKey };
  const pending: Pending[] = [];
  const newKeys: { runId: string; key: string; index: number }[] = [];
  /** Runs a stopRun moved: their steps stop too. */
  const stopped: string[] = [];

  requests.forEach((asked, index) => {
    const found = state.get(asked.id);
    // A run outside the token's projects does not exist for it.
    const run = found && canSeeProject(actor, found.project) ? found : undefined;
    if (!run) {
      pending.push({
        kind: 'done',
        outcome: {
          kind: 'notFound',
          runId: asked.id,
          message: `run ${asked.id} not found`,
        },
      });
      return;
    }
    const request = resolveRequest(run, asked);
    // A replay first: the request that started the next attempt (a failure turned into
    // RETRYING) is stale now, yet its sender must get its answer. Keys are scoped by attempt
    // (run-service.ts), so the next attempt reusing a key is never answered the previous one's.
    const key = request.idempotencyKey == null ? null : keyOf(run.id, request.idempotencyKey);
    const seen = key == null ? undefined : seenKeys.get(key);
    if (seen) {
      pending.push(
        'index' in seen
          ? { kind: 'replayIndex', index: seen.index }
          : { kind: 'replayStored', stored: seen.stored },
      );
      return;
    }
    const stale = refuseStaleAttempt(run, request);
    if (stale) {
      const { kind: _kind, ...rest } = stale;
      pending.push({
        kind: 'done',
        outcome: { kind: 'conflict', runId: run.id, ...rest },
      });
      return;
    }
    if (key != null) {
      seenKeys.set(key, { index });
      newKeys.push({ runId: run.id, key: request.idempotencyKey!, index });
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
          outcome: { kind: 'conflict', runId: run.id, ...rest },
        });
        return;
      }
      case 'illegal': {
        const { kind: _kind, ...rest } = decision;
        pending.push({
          kind: 'done',
          outcome: { kind: 'illegal', runId: run.id, ...rest },
        });
        return;
      }
      case 'apply': {
        // Each planned change (a failure may become FAILED then RETRYING) is its own version.
        let current = run;
        const changes: changeStore.NewStatusChange[] = [];
        const at = requestedChangeTime(run, request, locked.now);
        for (const step of planChanges(run, request.to, request)) {
          const next = applyTransition(current, step, at);
          changes.push({
            ...changeOf(current, next, step),
            forced: request.force === true,
            actor: actor.name,
          });
          current = next;
        }
        state.set(run.id, current);
        changedIds.add(run.id);
        if (request.stopsChildren) stopped.push(run.id);
        pending.push({ kind: 'change', run: current, changes });
      }
    }
  });

  const lockedRevision = new Map(locked.rows.map((r) => [r.id, r.revision]));
  // A stopped parent's steps stop with it; what their stop causes is decided with the rest.
  const stopChanges = await stopDescendants(
    tx,
    state,
    changedIds,
    lockedRevision,
    locked.now,
    stopped,
    actor.name,
  );
  const cascaded = [
    ...stopChanges,
    ...(await cascadeToDownstreams(
      tx,
      state,
      changedIds,
      lockedRevision,
      locked.now,
      [...pending.flatMap((p) => (p.kind === 'change' ? p.changes : [])), ...stopChanges],
      actor.name,
    )),
  ];

  // One write per changed run, whatever the number of its changes in the batch.
  for (const id of changedIds) {
    state.set(id, { ...state.get(id)!, revision: lockedRevision.get(id)! + 1 });
  }
  const changedRuns = [...changedIds].map((id) => state.get(id)!);
  const storedChangeIds = pending.flatMap((p) =>
    p.kind === 'replayStored' && p.stored.changeId != null ? [p.stored.changeId] : [],
  );
  // Without idempotency records to write or replays to read, the writes are the last statement.
  if (newKeys.length === 0 && storedChangeIds.length === 0) commitWithNextStatement(tx);
  const inserted = await store.writeTransitions(tx, changedRuns, [
    ...pending.flatMap((p) => (p.kind === 'change' ? p.changes : [])),
    ...cascaded,
  ]);
  const insertedByVersion = new Map(inserted.map((c) => [keyOf(c.runId, String(c.version)), c]));
  const replayedChanges = new Map(
    (await changeStore.getStatusChangesByIds(tx, storedChangeIds)).map((c) => [c.id, c]),
  );

  // A replay answers the first answer again; one from an earlier request shows the run now.
  const outcomes: TransitionOutcome[] = [];
  const resolve = (p: Pending, runId: string): TransitionOutcome => {
    switch (p.kind) {
      case 'done':
        return p.outcome;
      case 'noop':
        return { kind: 'accepted', run: p.run, change: null };
      case 'change': {
        // The answer shows the status actually written last (RETRYING for a retried failure).
        const last = p.changes.at(-1)!;
        return {
          kind: 'accepted',
          // At the revision written (one write per run per batch), not the one it was locked at.
          run: { ...p.run, revision: state.get(runId)!.revision },
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

  await keyStore.insertTransitionKeys(
    tx,
    newKeys.map(({ runId, key, index }) => {
      const outcome = outcomes[index]!;
      return {
        runId,
        key,
        changeId: outcome.kind === 'accepted' ? (outcome.change?.id ?? null) : null,
        outcome: toStoredOutcome(outcome),
      };
    }),
  );

  return { outcomes, changes: inserted, changedRuns };
}

function keyOf(runId: string, key: string): string {
  return `${runId}\u0000${key}`;
}

/**
 * What is kept of an answer for replays: everything but the run, which is read fresh. The kind
 * is what replays read; `__typename` is written too for one release, so that an instance of the
 * previous version (which reads only that) replays these answers during a rolling upgrade.
 */
function toStoredOutcome(outcome: TransitionOutcome): Record<string, unknown> {
  const legacy = { __typename: TYPENAME_OF_KIND[outcome.kind] };
  if (outcome.kind === 'accepted') return { kind: outcome.kind, ...legacy };
  return { ...outcome, ...legacy };
}

const TYPENAME_OF_KIND: Record<OutcomeKind, string> = {
  accepted: 'TransitionAccepted',
  illegal: 'IllegalTransition',
  conflict: 'TransitionConflict',
  notFound: 'RunNotFound',
};

/**
 * Answers stored before kinds (migration 0013 adds the kind to them; an instance of the older
 * version may still write some during a rolling upgrade) named only their GraphQL type.
 */
const KIND_OF_TYPENAME: Record<string, OutcomeKind> = {
  TransitionAccepted: 'accepted',
  IllegalTransition: 'illegal',
  TransitionConflict: 'conflict',
  RunNotFound: 'notFound',
};

function fromStored(
  stored: keyStore.StoredTransitionKey,
  run: RunRow,
  changes: Map<number, StatusChangeRow>,
): TransitionOutcome {
  const { __typename, ...rest } = stored.outcome;
  const kind = (rest['kind'] as OutcomeKind | undefined) ?? KIND_OF_TYPENAME[String(__typename)];
  if (kind === 'accepted') {
    return {
      kind,
      run,
      change: stored.changeId == null ? null : (changes.get(stored.changeId) ?? null),
    };
  }
  return { ...rest, kind } as TransitionOutcome;
}
