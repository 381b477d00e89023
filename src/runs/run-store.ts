import {
  and,
  arrayContains,
  asc,
  desc,
  eq,
  getTableColumns,
  gt,
  gte,
  ilike,
  inArray,
  lt,
  lte,
  notInArray,
  or,
  sql,
  type SQL,
} from 'drizzle-orm';
import { union } from 'drizzle-orm/pg-core';
import { queryRows, type Executor, type Tx } from '../db/client.js';
import {
  runDependencies,
  runEventTriggers,
  runs,
  statusChanges,
  transitionKeys,
  type RunRow,
  type StatusChangeRow,
  type TriggerPolicy,
} from '../db/schema.js';
import { getStatusesInCategories, type RunStatus } from '../lifecycle/lifecycle.js';

/** SQL only: no rules here. The rules live in run-service.ts. */

export interface NewRun {
  project: string;
  name: string | null;
  tags: string[];
  meta: Record<string, unknown> | null;
  idempotencyKey: string | null;
  maxRetries: number;
  trigger: TriggerPolicy | null;
  skipOnUpstreamSkip: boolean;
  cacheKey: string | null;
  heartbeatTimeout: number | null;
  queueTimeout: number | null;
}

export interface NewStatusChange {
  runId: string;
  project: string;
  fromStatus: RunStatus | null;
  toStatus: RunStatus;
  version: number;
  reason: string | null;
  message: string | null;
  at: Date;
  forced?: boolean;
  /** The acting token's name; null for the service's own moves (the reaper). */
  actor: string | null;
}

const changeColumns = (() => {
  const { txId: _txId, ...columns } = getTableColumns(statusChanges);
  return columns;
})();

/** Insert a run; null when a run with the same (project, idempotencyKey) already exists. */
export async function insertRun(tx: Executor, values: NewRun): Promise<RunRow | null> {
  const rows = await tx
    .insert(runs)
    .values(values)
    .onConflictDoNothing({
      target: [runs.project, runs.idempotencyKey],
      where: sql`${runs.idempotencyKey} IS NOT NULL`,
    })
    .returning();
  return rows[0] ?? null;
}

export async function getRunByIdempotencyKey(
  ex: Executor,
  project: string,
  key: string,
): Promise<RunRow | null> {
  const rows = await ex
    .select()
    .from(runs)
    .where(and(eq(runs.project, project), eq(runs.idempotencyKey, key)));
  return rows[0] ?? null;
}

export async function getRunById(ex: Executor, id: string): Promise<RunRow | null> {
  const rows = await ex.select().from(runs).where(eq(runs.id, id));
  return rows[0] ?? null;
}

export async function getRunsByIds(ex: Executor, ids: readonly string[]): Promise<RunRow[]> {
  if (ids.length === 0) return [];
  return ex
    .select()
    .from(runs)
    .where(inArray(runs.id, [...ids]));
}

/**
 * Lock the runs a transition batch touches, in id order so that concurrent batches cannot
 * deadlock, and read the transaction's clock (truncated to the columns' millisecond precision).
 * FOR NO KEY UPDATE: measurement inserts (FOR KEY SHARE through their foreign key) do not wait.
 */
export async function lockRunsForTransition(
  tx: Tx,
  ids: readonly string[],
): Promise<{ rows: RunRow[]; now: Date }> {
  if (ids.length === 0) return { rows: [], now: new Date() };
  const rows = await tx
    .select({
      ...getTableColumns(runs),
      now: sql<Date>`date_trunc('milliseconds', now())`.mapWith((v: string) => new Date(v)),
    })
    .from(runs)
    .where(inArray(runs.id, [...ids]))
    .orderBy(asc(runs.id))
    .for('no key update');
  if (rows.length === 0) return { rows: [], now: new Date() };
  const now = rows[0]!.now;
  return { rows: rows.map(({ now: _now, ...run }) => run), now };
}

/** UPDATE of each run to its new state (computed by the service), from one JSON parameter. */
function updateRunStatesSql(states: readonly RunRow[]): SQL {
  const payload = JSON.stringify(
    states.map((s) => ({
      id: s.id,
      status: s.status,
      version: s.version,
      attempt: s.attempt,
      revision: s.revision,
      blocked_reason: s.blockedReason,
      updated_at: s.updatedAt,
      started_at: s.startedAt,
      finished_at: s.finishedAt,
      stop_message: s.stopMessage,
    })),
  );
  return sql`
    UPDATE runs AS r
    SET status = v.status::run_status, version = v.version, attempt = v.attempt, revision = v.revision, updated_at = v.updated_at,
        blocked_reason = v.blocked_reason,
        started_at = v.started_at, finished_at = v.finished_at, stop_message = v.stop_message
    FROM jsonb_to_recordset(${payload}::jsonb) AS v(
      id uuid, status text, version int, attempt int, revision bigint, blocked_reason text,
      updated_at timestamptz, started_at timestamptz, finished_at timestamptz, stop_message text)
    WHERE r.id = v.id`;
}

/**
 * INSERT of change-log rows, ids in the given order, each with the xid of a CTE `tx` the
 * statement must define first: the change-log tail's gap rule relies on every writer having its
 * xid before its ids (see events/change-log-tail.ts).
 */
function insertStatusChangesSql(changes: readonly NewStatusChange[]): SQL {
  return sql`
    INSERT INTO status_changes (tx_id, run_id, project, from_status, to_status, version, reason, message, at, forced, actor)
    SELECT tx.xid, c.run_id, c.project, c.from_status::run_status, c.to_status::run_status,
           c.version, c.reason, c.message, c.at, coalesce(c.forced, false), c.actor
    FROM tx, ROWS FROM (
      jsonb_to_recordset(${JSON.stringify(changes)}::jsonb) AS ("runId" uuid, project text, "fromStatus" text,
        "toStatus" text, version int, reason text, message text, at timestamptz, forced boolean,
        actor text)
    ) WITH ORDINALITY AS c(run_id, project, from_status, to_status, version, reason, message, at, forced, actor, n)
    ORDER BY c.n
    RETURNING id, run_id, project, from_status, to_status, version, reason, message, at, forced, actor`;
}

/** Write the new state of each transitioned run (computed by the service) in one statement. */
export async function updateRunStates(tx: Tx, states: readonly RunRow[]): Promise<void> {
  if (states.length === 0) return;
  await tx.execute(sql`/* applyRunTransitions */ ${updateRunStatesSql(states)}`);
}

/**
 * A transition batch's writes in one statement (one round trip): the new run states and the
 * change-log rows, ids in the given order.
 */
export async function writeTransitions(
  tx: Tx,
  states: readonly RunRow[],
  changes: readonly NewStatusChange[],
): Promise<StatusChangeRow[]> {
  if (changes.length === 0) {
    await updateRunStates(tx, states);
    return [];
  }
  const inserted = await queryRows<RawStatusChange>(
    tx,
    sql`
    /* writeTransitions */
    WITH tx AS (SELECT pg_current_xact_id() AS xid),
    updated AS (${updateRunStatesSql(states)})
    ${insertStatusChangesSql(changes)}`,
  );
  return inserted.map(mapStatusChangeRow);
}

/** A status_changes row as both drivers return it from raw SQL. */
export interface RawStatusChange {
  id: string | number;
  run_id: string;
  project: string;
  from_status: RunStatus | null;
  to_status: RunStatus;
  version: number;
  reason: string | null;
  message: string | null;
  at: string | Date;
  forced?: boolean | null;
  actor?: string | null;
}

export function mapStatusChangeRow(row: RawStatusChange): StatusChangeRow {
  return {
    id: Number(row.id),
    runId: row.run_id,
    project: row.project,
    fromStatus: row.from_status,
    toStatus: row.to_status,
    version: row.version,
    reason: row.reason,
    message: row.message,
    forced: row.forced === true,
    actor: row.actor ?? null,
    at: row.at instanceof Date ? row.at : new Date(row.at),
  };
}

/** Append to the change log, ids in the given order (see insertStatusChangesSql). */
export async function insertStatusChanges(
  tx: Executor,
  rows: readonly NewStatusChange[],
): Promise<StatusChangeRow[]> {
  if (rows.length === 0) return [];
  const inserted = await queryRows<RawStatusChange>(
    tx,
    sql`
    /* insertStatusChanges */
    WITH tx AS (SELECT pg_current_xact_id() AS xid)
    ${insertStatusChangesSql(rows)}`,
  );
  return inserted.map(mapStatusChangeRow);
}

export async function getStatusChangesByIds(
  ex: Executor,
  ids: readonly number[],
): Promise<StatusChangeRow[]> {
  if (ids.length === 0) return [];
  return ex
    .select(changeColumns)
    .from(statusChanges)
    .where(inArray(statusChanges.id, [...ids]));
}

export interface StoredTransitionKey {
  runId: string;
  key: string;
  changeId: number | null;
  outcome: Record<string, unknown>;
}

export async function findTransitionKeys(
  tx: Tx,
  pairs: readonly { runId: string; key: string }[],
): Promise<StoredTransitionKey[]> {
  if (pairs.length === 0) return [];
  return tx
    .select({
      runId: transitionKeys.runId,
      key: transitionKeys.key,
      changeId: transitionKeys.changeId,
      outcome: transitionKeys.outcome,
    })
    .from(transitionKeys)
    .where(
      or(
        ...pairs.map((p) => and(eq(transitionKeys.runId, p.runId), eq(transitionKeys.key, p.key))),
      ),
    );
}

export async function insertTransitionKeys(
  tx: Tx,
  rows: readonly StoredTransitionKey[],
): Promise<void> {
  if (rows.length === 0) return;
  await tx.insert(transitionKeys).values([...rows]);
}

/** Conditions on a worker's report: the attempt it reports for, the token's projects. */
export interface RunGuard {
  attempt: number | null;
  projects: readonly string[] | null;
}

function guarded(id: string, only: RunGuard) {
  return and(
    eq(runs.id, id),
    only.attempt == null ? undefined : eq(runs.attempt, only.attempt),
    only.projects == null ? undefined : inArray(runs.project, [...only.projects]),
  );
}

export async function updateProgress(
  ex: Executor,
  id: string,
  progress: number,
  phase: string | null | undefined,
  only: RunGuard,
): Promise<RunRow | null> {
  const rows = await ex
    .update(runs)
    .set({
      revision: sql`${runs.revision} + 1`,
      progress,
      ...(phase === undefined ? {} : { phase }),
      // Never backwards: a report that waited for a lock behind a later change keeps its time.
      updatedAt: sql`greatest(now(), ${runs.updatedAt})`,
    })
    .where(guarded(id, only))
    .returning();
  return rows[0] ?? null;
}

/** Statuses of the DONE category: their runs take no heartbeat. */
const DONE_STATUSES = getStatusesInCategories(['DONE']);

/**
 * Record a heartbeat; null when the run is missing, out of scope, of another attempt or done.
 * Deliberately leaves updatedAt alone, so heartbeats do not reorder lists.
 */
export async function touchHeartbeat(
  ex: Executor,
  id: string,
  only: RunGuard,
): Promise<RunRow | null> {
  const rows = await ex
    .update(runs)
    .set({ heartbeatAt: sql`now()`, revision: sql`${runs.revision} + 1` })
    .where(and(guarded(id, only), notInArray(runs.status, DONE_STATUSES)))
    .returning();
  return rows[0] ?? null;
}

export type RunOrderField = 'CREATED_AT' | 'UPDATED_AT';
export type OrderDirection = 'ASC' | 'DESC';

export interface RunQuery {
  project?: string | null;
  /** The token's projects; null: any project, an empty list matches nothing. */
  projects?: readonly string[] | null;
  /** null: any status; an empty list matches nothing. */
  statuses: readonly RunStatus[] | null;
  tags?: readonly string[] | null;
  nameContains?: string | null;
  createdAfter?: Date | null;
  createdBefore?: Date | null;
  orderField: RunOrderField;
  direction: OrderDirection;
  after: { at: Date; id: string } | null;
  limit: number;
}

/** Keyset-paginated runs; every filter and order is backed by an index (see schema.ts). */
export async function listRuns(ex: Executor, q: RunQuery): Promise<RunRow[]> {
  const orderColumn = q.orderField === 'UPDATED_AT' ? runs.updatedAt : runs.createdAt;
  const conditions: (SQL | undefined)[] = [];
  if (q.project != null) conditions.push(eq(runs.project, q.project));
  if (q.projects != null) {
    if (q.projects.length === 0) return [];
    conditions.push(inArray(runs.project, [...q.projects]));
  }
  if (q.statuses != null) {
    if (q.statuses.length === 0) return [];
    conditions.push(inArray(runs.status, [...q.statuses]));
  }
  if (q.tags != null && q.tags.length > 0) conditions.push(arrayContains(runs.tags, [...q.tags]));
  if (q.nameContains != null) conditions.push(ilike(runs.name, `%${escapeLike(q.nameContains)}%`));
  if (q.createdAfter != null) conditions.push(gte(runs.createdAt, q.createdAfter));
  if (q.createdBefore != null) conditions.push(lt(runs.createdAt, q.createdBefore));
  if (q.after) {
    // Row comparison: one index range scan on (column, id).
    conditions.push(
      q.direction === 'DESC'
        ? sql`(${orderColumn}, ${runs.id}) < (${q.after.at.toISOString()}::timestamptz, ${q.after.id}::uuid)`
        : sql`(${orderColumn}, ${runs.id}) > (${q.after.at.toISOString()}::timestamptz, ${q.after.id}::uuid)`,
    );
  }
  const dir = q.direction === 'DESC' ? desc : asc;
  return ex
    .select()
    .from(runs)
    .where(and(...conditions))
    .orderBy(dir(orderColumn), dir(runs.id))
    .limit(q.limit);
}

export interface StatusChangeQuery {
  runIds?: readonly string[] | null;
  projects?: readonly string[] | null;
  /** null: any status; an empty list matches nothing. */
  statuses: readonly RunStatus[] | null;
  afterId: number | null;
  /** Only changes with id <= throughId (the part of the log known to have no gaps left). */
  throughId: number | null;
  limit: number;
}

/** The global change log, in log order. */
export async function listStatusChanges(
  ex: Executor,
  q: StatusChangeQuery,
): Promise<StatusChangeRow[]> {
  if ([q.runIds, q.projects, q.statuses].some((list) => list != null && list.length === 0))
    return [];
  const conditions: (SQL | undefined)[] = [];
  if (q.runIds != null) conditions.push(inArray(statusChanges.runId, [...q.runIds]));
  if (q.projects != null) conditions.push(inArray(statusChanges.project, [...q.projects]));
  if (q.statuses != null) conditions.push(inArray(statusChanges.toStatus, [...q.statuses]));
  if (q.afterId != null) conditions.push(gt(statusChanges.id, q.afterId));
  if (q.throughId != null) conditions.push(lte(statusChanges.id, q.throughId));
  return ex
    .select(changeColumns)
    .from(statusChanges)
    .where(and(...conditions))
    .orderBy(asc(statusChanges.id))
    .limit(q.limit);
}

/** One run's history, oldest first (by version). */
export async function listRunHistory(
  ex: Executor,
  runId: string,
  afterVersion: number | null,
  limit: number,
): Promise<StatusChangeRow[]> {
  return ex
    .select(changeColumns)
    .from(statusChanges)
    .where(
      and(
        eq(statusChanges.runId, runId),
        afterVersion == null ? undefined : gt(statusChanges.version, afterVersion),
      ),
    )
    .orderBy(asc(statusChanges.version))
    .limit(limit);
}

function escapeLike(value: string): string {
  return value.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/**
 * The highest id up to which the log has no unresolved gap: `resolved` (from the change-log
 * tail, below which every gap is known to be final) extended by the ids that follow it without
 * a hole (visible now, so committed). A page of the log never goes past it.
 */
export async function findContiguousLogHead(ex: Executor, resolved: number): Promise<number> {
  const rows = await ex
    .select({ id: statusChanges.id })
    .from(statusChanges)
    .where(gt(statusChanges.id, resolved))
    .orderBy(asc(statusChanges.id))
    .limit(1000);
  let head = resolved;
  for (const { id } of rows) {
    if (id !== head + 1) break;
    head = id;
  }
  return head;
}

export async function insertDependencies(
  tx: Executor,
  runId: string,
  upstreamIds: readonly string[],
): Promise<void> {
  if (upstreamIds.length === 0) return;
  await tx.insert(runDependencies).values(upstreamIds.map((upstreamId) => ({ runId, upstreamId })));
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
 * Runs a change may decide, in one round trip: those depending on a run that finished, and those
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
    .where(inArray(runDependencies.upstreamId, [...finishedIds]));
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

/** The newest SUCCEEDED run of the project with this cache key (memoization). */
export async function findMemoizedRun(
  ex: Executor,
  project: string,
  cacheKey: string,
): Promise<{ id: string } | null> {
  const rows = await ex
    .select({ id: runs.id })
    .from(runs)
    .where(
      and(eq(runs.project, project), eq(runs.cacheKey, cacheKey), eq(runs.status, 'SUCCEEDED')),
    )
    .orderBy(desc(runs.finishedAt))
    .limit(1);
  return rows[0] ?? null;
}

/** Set what updateRunStates does not write: which run a memoized run stands for. */
export async function setMemoizedFrom(ex: Executor, id: string, from: string): Promise<void> {
  await ex.update(runs).set({ memoizedFrom: from }).where(eq(runs.id, id));
}

export interface OverdueRun {
  id: string;
  revision: number;
  to: 'UNKNOWN' | 'FAILED' | 'STOPPED';
  reason: 'HEARTBEAT_TIMEOUT' | 'QUEUE_TIMEOUT' | 'STOP_TIMEOUT';
}

/**
 * Runs past a deadline: silent longer than their heartbeatTimeout while in the RUNNING category,
 * waiting longer than their queueTimeout while PENDING or QUEUED, STOPPING longer than the
 * server's stop timeout. Times are the database's.
 */
export async function findOverdueRuns(
  ex: Executor,
  options: {
    stopTimeoutSeconds: number;
    limit: number;
    running: readonly RunStatus[];
    waiting: readonly RunStatus[];
  },
): Promise<OverdueRun[]> {
  const rows = await queryRows<{ id: string; revision: string | number; kind: string }>(
    ex,
    sql`
    /* findOverdueRuns */
    SELECT id, revision, CASE
        WHEN status = ANY(${sql.raw(`'{${options.running.join(',')}}'`)}::run_status[]) THEN 'heartbeat'
        WHEN status = 'STOPPING' THEN 'stop'
        ELSE 'queue' END AS kind
    FROM runs
    WHERE (heartbeat_timeout IS NOT NULL
            AND status = ANY(${sql.raw(`'{${options.running.join(',')}}'`)}::run_status[])
            AND greatest(heartbeat_at, updated_at) < now() - make_interval(secs => heartbeat_timeout))
       OR (queue_timeout IS NOT NULL
            AND status = ANY(${sql.raw(`'{${options.waiting.join(',')}}'`)}::run_status[])
            AND updated_at < now() - make_interval(secs => queue_timeout))
       OR (status = 'STOPPING' AND updated_at < now() - make_interval(secs => ${options.stopTimeoutSeconds}))
    LIMIT ${options.limit}`,
  );
  const decisions = {
    heartbeat: { to: 'UNKNOWN', reason: 'HEARTBEAT_TIMEOUT' },
    queue: { to: 'FAILED', reason: 'QUEUE_TIMEOUT' },
    stop: { to: 'STOPPED', reason: 'STOP_TIMEOUT' },
  } as const;
  return rows.map((r) => ({
    id: r.id,
    revision: Number(r.revision),
    ...decisions[r.kind as keyof typeof decisions],
  }));
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
    statuses: string[];
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
      statuses: runEventTriggers.statuses,
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
