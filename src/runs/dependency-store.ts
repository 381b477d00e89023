import { and, asc, eq, inArray, isNotNull, or, sql } from 'drizzle-orm';
import { union } from 'drizzle-orm/pg-core';
import { queryRows, type Executor, type Tx } from '../db/client.js';
import { runDependencies, runEventTriggers, runs } from '../db/schema.js';
import type { RunStatus } from '../lifecycle/lifecycle.js';

/** SQL of run_dependencies and run_event_triggers (orchestration's edges) only. */

/** A run's upstream edges: under its trigger policy (`when` null), or each with a condition. */
export async function insertDependencies(
  tx: Executor,
  runId: string,
  edges: readonly { upstreamId: string; when: readonly RunStatus[] | null }[],
): Promise<void> {
  if (edges.length === 0) return;
  await tx
    .insert(runDependencies)
    .values(edges.map(({ upstreamId, when }) => ({ runId, upstreamId, when: when && [...when] })));
}

/**
 * Lock a new run's upstreams and event-trigger refs (in id order), read them, and count the new
 * run among their followers, in one statement. An upstream finishing concurrently either waits
 * for this run to exist (its lock then reads the new count, and the change finds the new run
 * as a downstream) or commits first (and is read here as finished).
 */
export async function lockUpstreamsForCreate(
  tx: Tx,
  ids: readonly string[],
): Promise<
  {
    id: string;
    project: string;
    name: string | null;
    status: RunStatus;
    memoizedFrom: string | null;
  }[]
> {
  if (ids.length === 0) return [];
  const list = sql.join(
    ids.map((id) => sql`${id}::uuid`),
    sql`, `,
  );
  const rows = await queryRows<{
    id: string;
    project: string;
    name: string | null;
    status: RunStatus;
    memoized_from: string | null;
  }>(
    tx,
    sql`
    /* lockUpstreamsForCreate */
    UPDATE runs AS r SET followers = r.followers + 1
    FROM (SELECT id FROM runs WHERE id IN (${list}) ORDER BY id FOR NO KEY UPDATE) AS l
    WHERE r.id = l.id
    RETURNING r.id, r.project, r.name, r.status, r.memoized_from`,
  );
  return rows.map((r) => ({
    id: r.id,
    project: r.project,
    name: r.name,
    status: r.status,
    memoizedFrom: r.memoized_from,
  }));
}

/**
 * Runs a change may decide, in one round trip: those depending on a run that finished, those
 * with a condition of their own on a run that changed (a `when` may name any status), and those
 * with an event trigger on a run that changed.
 */
export async function findDependentIds(
  ex: Executor,
  finishedIds: readonly string[],
  changedIds: readonly string[],
): Promise<string[]> {
  if (finishedIds.length === 0 && changedIds.length === 0) return [];
  const dependents = ex
    .select({ runId: runDependencies.runId })
    .from(runDependencies)
    .where(
      or(
        inArray(runDependencies.upstreamId, [...finishedIds]),
        and(inArray(runDependencies.upstreamId, [...changedIds]), isNotNull(runDependencies.when)),
      ),
    );
  const watchers = ex
    .select({ runId: runEventTriggers.runId })
    .from(runEventTriggers)
    .where(inArray(runEventTriggers.refId, [...changedIds]));
  const rows = await union(dependents, watchers);
  return rows.map((r) => r.runId);
}

/** The upstreams of each of `runIds`, with their current status. */
export async function listUpstreamStates(
  ex: Executor,
  runIds: readonly string[],
): Promise<
  {
    runId: string;
    id: string;
    name: string | null;
    status: RunStatus;
    memoizedFrom: string | null;
    when: RunStatus[] | null;
  }[]
> {
  if (runIds.length === 0) return [];
  return ex
    .select({
      runId: runDependencies.runId,
      id: runs.id,
      name: runs.name,
      status: runs.status,
      memoizedFrom: runs.memoizedFrom,
      // Written from RunStatus values only (createRun checks them).
      when: sql<RunStatus[] | null>`${runDependencies.when}`,
    })
    .from(runDependencies)
    .innerJoin(runs, eq(runs.id, runDependencies.upstreamId))
    .where(inArray(runDependencies.runId, [...runIds]))
    .orderBy(asc(runs.id));
}

/** Edges touching `runIds`, for the upstreams/downstreams fields. */
export async function listDependencyEdges(
  ex: Executor,
  runIds: readonly string[],
): Promise<{ runId: string; upstreamId: string }[]> {
  if (runIds.length === 0) return [];
  return ex
    .select({ runId: runDependencies.runId, upstreamId: runDependencies.upstreamId })
    .from(runDependencies)
    .where(
      or(
        inArray(runDependencies.runId, [...runIds]),
        inArray(runDependencies.upstreamId, [...runIds]),
      ),
    );
}

export async function insertEventTriggers(
  tx: Executor,
  runId: string,
  triggers: readonly { refId: string; kinds: string[]; statuses: string[] }[],
): Promise<void> {
  if (triggers.length === 0) return;
  await tx.insert(runEventTriggers).values(triggers.map((t) => ({ runId, ...t })));
}

/** The event triggers of `runIds`: each ref's status and whether it ever emitted the kinds. */
export async function listEventTriggerStates(
  ex: Executor,
  runIds: readonly string[],
): Promise<
  {
    runId: string;
    refId: string;
    refName: string | null;
    refStatus: RunStatus;
    kinds: string[];
    statuses: RunStatus[];
    emitted: boolean;
  }[]
> {
  if (runIds.length === 0) return [];
  return ex
    .select({
      runId: runEventTriggers.runId,
      refId: runEventTriggers.refId,
      refName: runs.name,
      refStatus: runs.status,
      kinds: runEventTriggers.kinds,
      // Written by checkEventTriggers from the kinds: run statuses only.
      statuses: sql<RunStatus[]>`${runEventTriggers.statuses}`,
      emitted: sql<boolean>`EXISTS (
        SELECT 1 FROM status_changes c
        WHERE c.run_id = ${runEventTriggers.refId} AND c.to_status::text = ANY(${runEventTriggers.statuses}))`.mapWith(
        (v: unknown) => v === true || v === 't' || v === 'true',
      ),
    })
    .from(runEventTriggers)
    .innerJoin(runs, eq(runs.id, runEventTriggers.refId))
    .where(inArray(runEventTriggers.runId, [...runIds]));
}
