import type { Tx } from '../db/client.js';
import type { RunRow } from '../db/schema.js';
import { isDone } from '../lifecycle/lifecycle.js';
import { checkListLength, checkUuid, LIMITS } from '../validation.js';
import { statusesOfEventKind, type RunEventKind } from './dependency-rules.js';
import {
  changeTimeFor,
  decideDownstream,
  keepsSchedulersDecision,
  NOT_HANDED_ON,
} from './policy.js';
import * as store from './run-store.js';
import type * as changeStore from '../changelog/change-store.js';
import * as dependencyStore from './dependency-store.js';

/**
 * The server's orchestration: a waiting run's dependencies and event triggers, read and applied
 * in the transaction of the change that caused them. The decisions are policy.ts's.
 */

/** Event triggers, checked; several entries for one ref are merged. */
export function checkEventTriggers(
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

  let moved = [...entered.keys()];
  while (moved.length > 0) {
    // Only a run something follows (read with its lock) can decide others: most changes need
    // no query here.
    const followed = moved.filter((id) => state.get(id)!.followers > 0);
    if (followed.length === 0) break;
    const finished = followed.filter((id) => isDone(state.get(id)!.status));
    const candidates = await dependencyStore.findDependentIds(tx, finished, followed);
    if (candidates.length === 0) break;
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
    const upstreamRows = await dependencyStore.listUpstreamStates(tx, ids);
    const eventRows = await dependencyStore.listEventTriggerStates(tx, ids);
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
      const at = changeTimeFor(run, now);
      let decided = decideDownstream(run, upstreams, events, at, actor);
      const queues = decided.changes.some((c) => c.toStatus === 'QUEUED');
      if (queues && !keepsSchedulersDecision(run)) {
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
