import type { TransitionRequest } from './policy.js';
import type { Actor } from './transition-batch.js';
import { SIZED_BATCH_MOST, type DirectResult } from './direct-transition.js';

/**
 * Group commit for the one-statement change. Requests for single changes that arrive together
 * (read from their sockets in the same turn of the event loop) are sent as one statement: one
 * transaction, one WAL flush and one round trip for all of them, instead of one each. Measured
 * with npm run bench -- transitions (issue 18): at 32 clients PostgreSQL's CPU per change went
 * from 450-650 µs to 260-420, at 0.11-0.16 transactions per change; at 8 clients (groups of
 * about 2.5, 0.34-0.43 transactions per change) it moved within the noise of this machine.
 *
 * Nothing a caller sees changes: a group is applied only if every change of it applies as it
 * would alone (the batch statement is all or none, and checks each row as it is checked alone);
 * otherwise, or when the group's statement fails, each request is applied on its own, as
 * before, and gets its own answer or error. A group holds one actor (the statement records one)
 * and one request per run: a second request for the same run goes in another group, sent at
 * the same time, and the run's row lock orders the two, as it orders two requests today. A
 * request alone goes as before, one turn of the event loop later; nothing waits for a statement
 * in flight, so a group held up by a lock holds up no other.
 */
export interface DirectGroups {
  /** Apply `request` in one statement, grouped with others; null when the full path must decide. */
  apply(request: TransitionRequest, actor: Actor, withRun: boolean): Promise<DirectResult | null>;
}

interface Pending {
  request: TransitionRequest;
  actor: Actor;
  withRun: boolean;
  resolve: (result: DirectResult | null) => void;
  reject: (error: unknown) => void;
}

export function createDirectGroups(deps: {
  /** One request alone, as before. */
  applyOne: (
    request: TransitionRequest,
    actor: Actor,
    withRun: boolean,
  ) => Promise<DirectResult | null>;
  /** Several requests to distinct runs of one actor, all or none. */
  applyMany: (
    requests: TransitionRequest[],
    actor: Actor,
    withRun: boolean,
  ) => Promise<DirectResult | null>;
}): DirectGroups {
  let pending: Pending[] = [];
  let scheduled = false;

  function flush() {
    scheduled = false;
    const taken = pending;
    pending = [];
    for (const group of groupsOf(taken)) void applyGroup(group);
  }

  async function applyGroup(group: Pending[]) {
    if (group.length > 1) {
      let result: DirectResult | null = null;
      try {
        result = await deps.applyMany(
          group.map((p) => p.request),
          group[0]!.actor,
          group.some((p) => p.withRun),
        );
      } catch {
        // Each request on its own below: it gets its own answer, or its own error.
      }
      if (result) {
        group.forEach((p, i) =>
          p.resolve({ outcomes: [result.outcomes[i]!], changes: [result.changes[i]!] }),
        );
        return;
      }
    }
    await Promise.all(
      group.map((p) => deps.applyOne(p.request, p.actor, p.withRun).then(p.resolve, p.reject)),
    );
  }

  return {
    apply(request, actor, withRun) {
      return new Promise((resolve, reject) => {
        pending.push({ request, actor, withRun, resolve, reject });
        if (!scheduled) {
          scheduled = true;
          setImmediate(flush);
        }
      });
    },
  };
}

/**
 * Requests in arrival order, each in the first group of its actor that has room and not its
 * run. A group takes at most SIZED_BATCH_MOST: a statement PostgreSQL keeps one plan for, and a
 * bound on how many requests one that fails sends again on their own.
 */
function groupsOf(requests: Pending[]): Pending[][] {
  if (requests.length === 1) return [requests];
  const groups: { actor: string; runs: Set<string>; members: Pending[] }[] = [];
  for (const p of requests) {
    const actor = actorKey(p.actor);
    let group = groups.find(
      (g) => g.actor === actor && g.members.length < SIZED_BATCH_MOST && !g.runs.has(p.request.id),
    );
    if (!group) groups.push((group = { actor, runs: new Set(), members: [] }));
    group.runs.add(p.request.id);
    group.members.push(p);
  }
  return groups.map((g) => g.members);
}

function actorKey(actor: Actor): string {
  return JSON.stringify([actor.name, actor.projects]);
}
