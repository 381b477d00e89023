import type { Tx } from '../db/client.js';
import type { RunRow } from '../db/schema.js';
import { isDone, isTransitionAllowed, type RunStatus } from '../lifecycle/lifecycle.js';
import { checkListLength, LIMITS } from '../validation.js';
import { parseRunRef, type RunRef } from './run-refs.js';
import { statusesOfEventKind, type RunEventKind } from './dependency-rules.js';
import {
  applyTransition,
  changeOf,
  changeTimeFor,
  decideDownstream,
  decideRollup,
  keepsSchedulersDecision,
  NOT_HANDED_ON,
  stopTarget,
} from './policy.js';
import * as store from './run-store.js';
import type * as changeStore from '../changelog/change-store.js';
import * as dependencyStore from './dependency-store.js';

/**
 * The server's orchestration: a waiting run's dependencies and event triggers, read and applied
 * in the transaction of the change that caused them. The decisions are policy.ts's.
 */

/** Event triggers, checked; their refs are resolved in the transaction (run-refs.ts). */
export function checkEventTriggers(
  input: readonly { ref: string; kinds: readonly RunEventKind[] }[] | null | undefined,
): { ref: RunRef; field: string; kinds: readonly RunEventKind[] }[] {
  return checkListLength('input.events', input ?? [], LIMITS.eventTriggers).map((trigger, i) => {
    const field = `input.events[${i}].ref`;
    const ref = parseRunRef(field, trigger.ref);
    checkListLength(`input.events[${i}].kinds`, trigger.kinds, 22, 1);
    return { ref, field, kinds: trigger.kinds };
  });
}

/** Event triggers by resolved ref id: several entries for one ref are merged. */
export function mergeEventTriggers(
  triggers: readonly { kinds: readonly RunEventKind[] }[],
  refIds: readonly string[],
): { refId: string; kinds: string[]; statuses: string[] }[] {
  const byRef = new Map<string, Set<RunEventKind>>();
  triggers.forEach((trigger, i) => {
    const kinds = byRef.get(refIds[i]!) ?? new Set<RunEventKind>();
    for (const kind of trigger.kinds) kinds.add(kind);
    byRef.set(refIds[i]!, kinds);
  });
  return [...byRef].map(([refId, kinds]) => ({
    refId,
    kinds: [...kinds],
    statuses: [...new Set([...kinds].flatMap(statusesOfEventKind))],
  }));
}

/**
 * The server's decisions caused by this batch, in its transaction: every run waiting on a run
 * that just finished is locked, its upstreams are read (after the lock, so a concurrent
 * transaction that finished another upstream is seen once it committed), and its trigger policy
 * applied. A run failing upstream finishes too, so the failure cascades level by level through
 * the whole downstream graph. Two upstreams finishing at once queue their shared downstream
 * exactly once: its lock orders them, and the second sees the first's commit.
 */
export async function cascadeToDownstreams(
  tx: Tx,
  state: Map<string, RunRow>,
  changedIds: Set<string>,
  lockedRevision: Map<string, number>,
  now: Date,
  batchChanges: readonly changeStore.NewStatusChange[],
  /** The token whose changes caused these: recorded as their actor. */
  actor: string | null,
): Promise<changeStore.NewStatusChange[]> {
  const changes: changeStore.NewStatusChange[] = [];
  // Statuses entered in this (not yet written) batch: events the log does not show yet.
  const entered = new Map<string, Set<string>>();
  const noteEntered = (c: changeStore.NewStatusChange) => {
    const set = entered.get(c.runId) ?? new Set<string>();
    set.add(c.toStatus);
    entered.set(c.runId, set);
  };
  batchChanges.forEach(noteEntered);
  const record = (run: RunRow, decided: RunRow, made: changeStore.NewStatusChange[]) => {
    state.set(run.id, decided);
    changedIds.add(run.id);
    changes.push(...made);
    made.forEach(noteEntered);
  };
  const lock = async (ids: readonly string[]) => {
    const locked = await store.lockRunsForTransition(
      tx,
      ids.filter((id) => !state.has(id)),
    );
    adoptLocked(state, lockedRevision, locked.rows);
  };

  /** Runs waiting on `moved` runs, decided: the ids of those that changed status. */
  async function decideDependents(moved: readonly string[]): Promise<string[]> {
    // Only a run something follows (read with its lock) can decide others: most changes need
    // no query here.
    const followed = moved.filter((id) => state.get(id)!.followers > 0);
    if (followed.length === 0) return [];
    const finished = followed.filter((id) => isDone(state.get(id)!.status));
    const candidates = await dependencyStore.findDependentIds(tx, finished, followed);
    if (candidates.length === 0) return [];
    await lock(candidates);
    // Every run not handed on yet is decided: one a scheduler moved on, stopped and resumed,
    // or retried by the reaper still fails upstream when its conditions can never be met.
    const created = candidates
      .map((id) => state.get(id))
      .filter((run): run is RunRow => run != null && NOT_HANDED_ON.has(run.status));
    const ids = created.map((r) => r.id);
    const upstreamRows = await dependencyStore.listUpstreamStates(tx, ids);
    const eventRows = await dependencyStore.listEventTriggerStates(tx, ids);
    const next: string[] = [];
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
      if (upstreams.length === 0 && events.length === 0) continue;
      const at = changeTimeFor(run, now);
      let decided = decideDownstream(run, upstreams, events, at, actor);
      const queues = decided.changes.some((c) => c.toStatus === 'QUEUED');
      if (queues && !keepsSchedulersDecision(run)) {
        decided = { run: { ...run, blockedReason: null }, changes: [] };
      }
      if (decided.changes.length === 0 && decided.run.blockedReason === run.blockedReason) continue;
      record(run, decided.run, decided.changes);
      if (decided.changes.length > 0) next.push(run.id);
    }
    return next;
  }

  /** Rollup parents of `moved` runs, moved after their children: the ids of those that moved. */
  async function rollUpParents(moved: readonly string[]): Promise<string[]> {
    const parentIds = [
      ...new Set(
        moved.flatMap((id) => (state.get(id)?.parentId ? [state.get(id)!.parentId!] : [])),
      ),
    ];
    if (parentIds.length === 0) return [];
    // The parent's lock orders the children's transactions: the second one to take it counts
    // the first one's committed change, so two children finishing at once move it once. A
    // batch's own runs came with their rollup ancestors locked (lockRunsForTransition).
    await lock(
      await store.filterRollupIds(
        tx,
        parentIds.filter((id) => !state.has(id)),
      ),
    );
    const rollups = parentIds.map((id) => state.get(id)).filter((p): p is RunRow => !!p?.rollup);
    if (rollups.length === 0) return [];
    const counted = await store.countChildrenByStatus(
      tx,
      rollups.map((p) => p.id),
    );
    const next: string[] = [];
    for (const parent of rollups) {
      // The log of this batch (not written yet) moves the committed counts of its children.
      const counts = new Map(counted.get(parent.id) ?? []);
      const mine = [...batchChanges, ...changes].filter((c) => c.parentId === parent.id);
      for (const c of mine) {
        if (c.fromStatus) counts.set(c.fromStatus, (counts.get(c.fromStatus) ?? 0) - 1);
        counts.set(c.toStatus, (counts.get(c.toStatus) ?? 0) + 1);
      }
      const failedChild = mine.findLast((c) => FAILURES.has(c.toStatus))?.runId ?? null;
      const plan = decideRollup(parent, counts, failedChild);
      if (plan.length === 0) continue;
      let current = parent;
      const made: changeStore.NewStatusChange[] = [];
      const at = changeTimeFor(parent, now);
      for (const step of plan) {
        const after = applyTransition(current, step, at);
        made.push({ ...changeOf(current, after, step), actor });
        current = after;
      }
      record(parent, current, made);
      next.push(parent.id);
    }
    return next;
  }

  let moved = [...entered.keys()];
  while (moved.length > 0) {
    const dependents = await decideDependents(moved);
    const parents = await rollUpParents(moved);
    moved = [...new Set([...dependents, ...parents])];
  }
  return changes;
}

/**
 * Runs just locked join the batch's state; one the batch holds already (a rollup ancestor
 * locked again with a step) keeps its state: the row read from the table lacks the batch's
 * unwritten changes.
 */
function adoptLocked(
  state: Map<string, RunRow>,
  lockedRevision: Map<string, number>,
  rows: readonly RunRow[],
): void {
  for (const run of rows) {
    if (state.has(run.id)) continue;
    state.set(run.id, run);
    lockedRevision.set(run.id, run.revision);
  }
}

const FAILURES: ReadonlySet<RunStatus> = new Set(['FAILED', 'UPSTREAM_FAILED']);

/**
 * stopRun on a parent stops its children that are not done, and theirs, in the same
 * transaction: STOPPED where no executor holds them yet, else STOPPING (policy's stopTarget).
 */
export async function stopDescendants(
  tx: Tx,
  state: Map<string, RunRow>,
  changedIds: Set<string>,
  lockedRevision: Map<string, number>,
  now: Date,
  parentIds: readonly string[],
  actor: string | null,
): Promise<changeStore.NewStatusChange[]> {
  const changes: changeStore.NewStatusChange[] = [];
  let level = [...parentIds];
  while (level.length > 0) {
    const childIds = await store.listUnfinishedChildIds(tx, level);
    const locked = await store.lockRunsForTransition(
      tx,
      childIds.filter((id) => !state.has(id)),
    );
    adoptLocked(state, lockedRevision, locked.rows);
    const next: string[] = [];
    for (const id of childIds) {
      const run = state.get(id);
      if (!run || isDone(run.status)) continue;
      // Already being stopped: its own steps are stopped all the same.
      if (run.status === 'STOPPING') {
        next.push(id);
        continue;
      }
      const step = {
        to: stopTarget(run),
        reason: 'PARENT_STOPPED',
        message: `parent ${run.parentId} was stopped`,
      };
      if (!isTransitionAllowed(run.status, step.to)) continue;
      const after = applyTransition(run, step, changeTimeFor(run, now));
      changes.push({ ...changeOf(run, after, step), actor });
      state.set(id, after);
      changedIds.add(id);
      next.push(id);
    }
    level = next;
  }
  return changes;
}
