import {
  and,
  asc,
  desc,
  eq,
  getTableColumns,
  inArray,
  notInArray,
  sql,
  type SQL,
} from 'drizzle-orm';
import {
  arrayLiteral,
  queryRows,
  queryText,
  queryValues,
  type Db,
  type Executor,
  type Tx,
} from '../db/client.js';
import { createRowReader } from '../db/row-reader.js';
import { runs, type RunRow, type StatusChangeRow, type TriggerPolicy } from '../db/schema.js';
import type { Dialect } from '../lifecycle/dialects.js';
import { getStatusesInCategories, type RunStatus } from '../lifecycle/lifecycle.js';
import {
  insertStatusChangesSql,
  type NewStatusChange,
  mapStatusChangeRow,
  type RawStatusChange,
} from '../changelog/change-store.js';
import { readTimestamp } from '../timestamps.js';

/** SQL of the runs table only: no rules here (they are in the service and the rules). */

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
  dialect: Dialect;
  /** The creation's reason, as the change-log row has it. */
  statusReason: string;
  parentId?: string | null;
  depth?: number;
  op?: string | null;
  rollup?: boolean;
  scheduledAt?: Date | null;
  attributes?: Record<string, unknown>;
  /** An import's creation time (default: now). */
  createdAt?: Date;
  updatedAt?: Date;
}

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

/** Whole runs, read by hand-written SQL on the read paths a page or a loader takes. */
const runReader = createRowReader(runs);

/** A whole runs row as a driver hands it over (keyed by column name), as select() answers it. */
export function readRunRow(raw: Record<string, unknown>): RunRow {
  return runReader.read(raw);
}

/** Runs matching `where`, ordered and limited by `tail` (hand-written SQL: see row-reader.ts). */
async function selectRuns(
  ex: Executor,
  where: SQL | undefined,
  tail: SQL = sql``,
  reader = runReader,
): Promise<RunRow[]> {
  const rows = await queryRows<Record<string, unknown>>(
    ex,
    sql`SELECT ${reader.columns} FROM runs WHERE ${where ?? sql`true`} ${tail}`,
  );
  return rows.map((row) => reader.read(row));
}

export async function getRunByIdempotencyKey(
  ex: Executor,
  project: string,
  key: string,
): Promise<RunRow | null> {
  const rows = await selectRuns(ex, and(eq(runs.project, project), eq(runs.idempotencyKey, key)));
  return rows[0] ?? null;
}

export async function getRunById(ex: Executor, id: string): Promise<RunRow | null> {
  const rows = await selectRuns(ex, eq(runs.id, id));
  return rows[0] ?? null;
}

export async function getRunByOp(
  ex: Executor,
  parentId: string,
  op: string,
): Promise<RunRow | null> {
  const rows = await selectRuns(ex, and(eq(runs.parentId, parentId), eq(runs.op, op)));
  return rows[0] ?? null;
}

export async function getRunsByIds(ex: Executor, ids: readonly string[]): Promise<RunRow[]> {
  if (ids.length === 0) return [];
  return selectRuns(ex, inArray(runs.id, [...ids]));
}

/** Each parent's children per status (committed), for rollups. */
export async function countChildrenByStatus(
  ex: Executor,
  parentIds: readonly string[],
): Promise<Map<string, Map<RunStatus, number>>> {
  const result = new Map<string, Map<RunStatus, number>>();
  if (parentIds.length === 0) return result;
  const rows = await ex
    .select({ parentId: runs.parentId, status: runs.status, n: sql<number>`count(*)::int` })
    .from(runs)
    .where(inArray(runs.parentId, [...parentIds]))
    .groupBy(runs.parentId, runs.status);
  for (const row of rows) {
    const counts = result.get(row.parentId!) ?? new Map<RunStatus, number>();
    counts.set(row.status, Number(row.n));
    result.set(row.parentId!, counts);
  }
  return result;
}

/** The children of `parentIds` that are not done (committed), in id order. */
export async function listUnfinishedChildIds(
  ex: Executor,
  parentIds: readonly string[],
): Promise<string[]> {
  if (parentIds.length === 0) return [];
  const rows = await ex
    .select({ id: runs.id })
    .from(runs)
    .where(and(inArray(runs.parentId, [...parentIds]), notInArray(runs.status, DONE_STATUSES)))
    .orderBy(asc(runs.id));
  return rows.map((r) => r.id);
}

/** The ids of a run and of every run above it (parent, its parent, ...). */
export async function listAncestorIds(ex: Executor, id: string): Promise<string[]> {
  const rows = await queryRows<{ id: string }>(
    ex,
    sql`
    /* listAncestorIds */
    WITH RECURSIVE up(id, parent_id) AS (
      SELECT id, parent_id FROM runs WHERE id = ${id}::uuid
      UNION ALL
      SELECT r.id, r.parent_id FROM runs r JOIN up ON r.id = up.parent_id
    )
    SELECT id FROM up`,
  );
  return rows.map((r) => r.id);
}

/**
 * Lock the runs a transition batch touches, with their rollup ancestors (a step's change may
 * move them), and read the transaction's clock (truncated to the columns' millisecond
 * precision). Locks are taken parents first, then by id (ORDER BY depth, id): a stop going down
 * a pipeline and a step's change rolling up take them in the same order, so they cannot
 * deadlock. FOR NO KEY UPDATE: measurement inserts (FOR KEY SHARE through their foreign key) do
 * not wait.
 */
export async function lockRunsForTransition(
  tx: Tx,
  ids: readonly string[],
): Promise<{ rows: RunRow[]; now: Date }> {
  if (ids.length === 0) return { rows: [], now: new Date() };
  const rows = await tx
    .select({
      ...getTableColumns(runs),
      now: sql<Date>`date_trunc('milliseconds', now())`.mapWith(readTimestamp),
    })
    .from(runs)
    .where(
      // Written so that every step is a lookup by primary key, whatever the planner's statistics
      // say: the ids as an array (ARRAY(...), one InitPlan) rather than IN (subquery), and each
      // parent through a LATERAL subquery that OFFSET 0 keeps from being flattened. The joins
      // they replace were planned as scans of the whole runs table when the table had not been
      // analyzed yet, or when its statistics said rollup runs were rare (issue 18: about 3 ms
      // per batch at 10,000 runs, growing with the table).
      sql`${runs.id} = ANY(ARRAY(
        WITH RECURSIVE up(id, parent_id) AS (
          SELECT id, parent_id FROM runs WHERE id = ANY(${arrayLiteral(ids)}::uuid[])
          UNION
          SELECT p.id, p.parent_id FROM up CROSS JOIN LATERAL (
            SELECT id, parent_id FROM runs WHERE id = up.parent_id AND rollup OFFSET 0
          ) AS p
        )
        SELECT id FROM up))`,
    )
    .orderBy(asc(runs.depth), asc(runs.id))
    .for('no key update');
  if (rows.length === 0) return { rows: [], now: new Date() };
  const now = rows[0]!.now;
  return { rows: rows.map(({ now: _now, ...run }) => run), now };
}

/** Of `ids`, the runs with rollup (a fact fixed at creation: read without a lock). */
export async function filterRollupIds(ex: Executor, ids: readonly string[]): Promise<string[]> {
  if (ids.length === 0) return [];
  const rows = await ex
    .select({ id: runs.id })
    .from(runs)
    .where(and(inArray(runs.id, [...ids]), eq(runs.rollup, true)));
  return rows.map((r) => r.id);
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
      status_reason: s.statusReason,
      outcome: s.outcome,
      exit_code: s.exitCode,
    })),
  );
  // `r.id = ANY(ids)` repeats the join's condition so that the runs are found through the primary
  // key: joined to jsonb_to_recordset alone (planned as 100 rows), runs was scanned whole at
  // 10,000 runs, analyzed or not (issue 18).
  return sql`
    UPDATE runs AS r
    SET status = v.status::run_status, version = v.version, attempt = v.attempt, revision = v.revision, updated_at = v.updated_at,
        blocked_reason = v.blocked_reason,
        started_at = v.started_at, finished_at = v.finished_at, stop_message = v.stop_message,
        status_reason = v.status_reason, outcome = v.outcome, exit_code = v.exit_code
    FROM jsonb_to_recordset(${payload}::jsonb) AS v(
      id uuid, status text, version int, attempt int, revision bigint, blocked_reason text,
      updated_at timestamptz, started_at timestamptz, finished_at timestamptz, stop_message text,
      status_reason text, outcome text, exit_code int)
    WHERE r.id = v.id AND r.id = ANY(${arrayLiteral(states.map((s) => s.id))}::uuid[])`;
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

/** What updateRun changes: given fields replace, `attributes` merges (null values remove). */
export interface RunRecordUpdate {
  name?: string | null;
  tags?: string[];
  meta?: Record<string, unknown> | null;
  /** Keys set (to non-null values) in attributes. */
  attributesSet?: Record<string, unknown>;
  /** Keys removed from attributes. */
  attributesRemoved?: string[];
}

/**
 * Apply an update in one statement, compare-and-set on the revision when `expectedRevision` is
 * given, and only while the merged attributes stay within `maxAttributesBytes`. Null when
 * nothing was written (missing, out of scope, another revision, or too large: the caller reads
 * the run to say which).
 */
export async function updateRunRecord(
  ex: Executor,
  id: string,
  update: RunRecordUpdate,
  only: { projects: readonly string[] | null; expectedRevision: number | null },
  maxAttributesBytes: number,
): Promise<RunRow | null> {
  const merged = sql`((${runs.attributes} || ${JSON.stringify(update.attributesSet ?? {})}::jsonb)
    - ARRAY(SELECT jsonb_array_elements_text(${JSON.stringify(update.attributesRemoved ?? [])}::jsonb)))`;
  const rows = await ex
    .update(runs)
    .set({
      ...(update.name === undefined ? {} : { name: update.name }),
      ...(update.tags === undefined ? {} : { tags: update.tags }),
      ...(update.meta === undefined ? {} : { meta: update.meta }),
      attributes: merged,
      // Not updatedAt: the deadlines (heartbeat, queue, stop) count from it, and an import's
      // next `at` must not be refused for an update in between. Like a heartbeat.
      revision: sql`${runs.revision} + 1`,
    })
    .where(
      and(
        eq(runs.id, id),
        only.projects == null ? undefined : inArray(runs.project, [...only.projects]),
        only.expectedRevision == null ? undefined : eq(runs.revision, only.expectedRevision),
        sql`octet_length(${merged}::text) <= ${maxAttributesBytes}`,
      ),
    )
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
  /** Children of this run. */
  parentId?: string | null;
  /** true: runs without a parent; false: steps. */
  roots?: boolean | null;
  /** Runs whose meta contains this JSON object (@>). */
  meta?: Record<string, unknown> | null;
  /** Runs whose attributes contain this JSON object (@>). */
  attributes?: Record<string, unknown> | null;
}

export interface RunPageQuery extends RunQuery {
  orderField: RunOrderField;
  direction: OrderDirection;
  after: { at: Date; id: string } | null;
  limit: number;
  /**
   * Only these fields of each run (null: all). The page's rows then lack the others: only the
   * GraphQL answer that asked for these fields reads them.
   */
  fields?: readonly (keyof RunRow)[] | null;
}

/**
 * What a page needs of each run whatever is asked: its visibility and, with the time it is
 * ordered by, its cursor's keys.
 */
const PAGE_FIELDS: readonly (keyof RunRow)[] = ['id', 'project', 'status'];

/**
 * The conditions of a run filter as SQL text, its values appended to `params` ($1, $2, …); null
 * when nothing can match. Written out rather than built with drizzle: listRuns is the hottest
 * read, and building its statement cost more of the service's CPU than PostgreSQL spent on it
 * (issue 18). Lists are one array parameter each, so a filter's statement text does not vary
 * with their length.
 */
function runConditionsText(q: RunQuery, params: unknown[]): string[] | null {
  const $ = (value: unknown) => `$${params.push(value)}`;
  const conditions: string[] = [];
  if (q.project != null) conditions.push(`project = ${$(q.project)}`);
  if (q.projects != null) {
    if (q.projects.length === 0) return null;
    conditions.push(`project = ANY(${$(arrayLiteral(q.projects))}::text[])`);
  }
  if (q.statuses != null) {
    if (q.statuses.length === 0) return null;
    conditions.push(`status = ANY(${$(arrayLiteral(q.statuses))}::run_status[])`);
  }
  if (q.tags != null && q.tags.length > 0)
    conditions.push(`tags @> ${$(arrayLiteral(q.tags))}::text[]`);
  if (q.nameContains != null) conditions.push(`name ILIKE ${$(`%${escapeLike(q.nameContains)}%`)}`);
  if (q.createdAfter != null)
    conditions.push(`created_at >= ${$(q.createdAfter.toISOString())}::timestamptz`);
  if (q.createdBefore != null)
    conditions.push(`created_at < ${$(q.createdBefore.toISOString())}::timestamptz`);
  if (q.parentId != null) conditions.push(`parent_id = ${$(q.parentId)}::uuid`);
  if (q.roots != null) conditions.push(q.roots ? 'parent_id IS NULL' : 'parent_id IS NOT NULL');
  // JSON containment, through the GIN (jsonb_path_ops) indexes.
  if (q.meta != null) conditions.push(`meta @> ${$(JSON.stringify(q.meta))}::jsonb`);
  if (q.attributes != null)
    conditions.push(`attributes @> ${$(JSON.stringify(q.attributes))}::jsonb`);
  return conditions;
}

/** A WHERE clause's text from runConditionsText's conditions (none: every run). */
function whereText(conditions: readonly string[]): string {
  return conditions.length > 0 ? conditions.join(' AND ') : 'true';
}

/** Keyset-paginated runs; every filter and order is backed by an index (see schema.ts). */
export async function listRuns(db: Db, q: RunPageQuery): Promise<RunRow[]> {
  const params: unknown[] = [];
  const conditions = runConditionsText(q, params);
  if (conditions === null) return [];
  const order = q.orderField === 'UPDATED_AT' ? 'updated_at' : 'created_at';
  const dir = q.direction === 'DESC' ? 'DESC' : 'ASC';
  if (q.after) {
    // Row comparison: one index range scan on (column, id).
    params.push(q.after.at.toISOString(), q.after.id);
    conditions.push(
      `(${order}, id) ${dir === 'DESC' ? '<' : '>'} ` +
        `($${params.length - 1}::timestamptz, $${params.length}::uuid)`,
    );
  }
  params.push(q.limit);
  const reader =
    q.fields == null
      ? runReader
      : runReader.only([
          ...PAGE_FIELDS,
          order === 'updated_at' ? 'updatedAt' : 'createdAt',
          ...q.fields,
        ]);
  const rows = await queryValues(
    db,
    `/* listRuns */ SELECT ${reader.columnList} FROM runs WHERE ${whereText(conditions)} ` +
      `ORDER BY ${order} ${dir}, id ${dir} LIMIT $${params.length}`,
    params,
  );
  return rows.map((values) => reader.readValues(values));
}

/**
 * Runs per status matching `q`, counted from the runs table (run-counts.ts answers the filters
 * its table can; a parent's children are counted through runs_parent_status_idx).
 */
export async function countRunsMatching(db: Db, q: RunQuery): Promise<Map<RunStatus, number>> {
  const params: unknown[] = [];
  const conditions = runConditionsText(q, params);
  if (conditions === null) return new Map();
  const rows = await queryText<{ status: RunStatus; n: number }>(
    db,
    `/* countRunsMatching */ SELECT status, count(*)::int AS n FROM runs ` +
      `WHERE ${whereText(conditions)} GROUP BY status`,
    params,
  );
  return new Map(rows.map((r) => [r.status, Number(r.n)]));
}

function escapeLike(value: string): string {
  return value.replace(/[\\%_]/g, (c) => `\\${c}`);
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

/** What the deadline rules (policy.ts deadlineFor) read of a run. */
export type DeadlineCandidate = Pick<
  RunRow,
  | 'id'
  | 'revision'
  | 'status'
  | 'heartbeatTimeout'
  | 'queueTimeout'
  | 'heartbeatAt'
  | 'updatedAt'
  | 'scheduledAt'
>;

/**
 * Runs a deadline may have passed for, and the database's clock to judge them by. The
 * conditions mirror policy.ts's deadlineFor so that the reaper's partial indexes (schema.ts)
 * find them without a scan; the policy decides.
 */
export async function findDeadlineCandidates(
  ex: Executor,
  options: {
    stopTimeoutSeconds: number;
    limit: number;
    running: readonly RunStatus[];
    waiting: readonly RunStatus[];
  },
): Promise<{ now: Date; runs: DeadlineCandidate[] }> {
  const rows = await queryRows<{
    now: string | Date;
    id: string | null;
    revision: string | number;
    status: RunStatus;
    heartbeat_timeout: number | null;
    queue_timeout: number | null;
    heartbeat_at: string | Date | null;
    updated_at: string | Date;
    scheduled_at: string | Date | null;
  }>(
    ex,
    sql`
    /* findDeadlineCandidates */
    SELECT clock.now, r.* FROM (SELECT now() AS now) AS clock
    LEFT JOIN LATERAL (
      SELECT id, revision, status, heartbeat_timeout, queue_timeout, heartbeat_at, updated_at,
             scheduled_at
      FROM runs
      WHERE (heartbeat_timeout IS NOT NULL
              AND status = ANY(${sql.raw(`'{${options.running.join(',')}}'`)}::run_status[])
              AND greatest(heartbeat_at, updated_at) < clock.now - make_interval(secs => heartbeat_timeout))
         OR (queue_timeout IS NOT NULL
              AND status = ANY(${sql.raw(`'{${options.waiting.join(',')}}'`)}::run_status[])
              AND updated_at < clock.now - make_interval(secs => queue_timeout))
         OR (status = 'STOPPING' AND updated_at < clock.now - make_interval(secs => ${options.stopTimeoutSeconds}))
         OR (status = 'ON_SCHEDULE' AND scheduled_at IS NOT NULL AND scheduled_at <= clock.now)
      LIMIT ${options.limit}
    ) AS r ON true`,
  );
  return {
    now: readTimestamp(rows[0]!.now),
    runs: rows.flatMap((r) =>
      r.id == null
        ? []
        : [
            {
              id: r.id,
              revision: Number(r.revision),
              status: r.status,
              heartbeatTimeout: r.heartbeat_timeout,
              queueTimeout: r.queue_timeout,
              heartbeatAt: r.heartbeat_at == null ? null : readTimestamp(r.heartbeat_at),
              updatedAt: readTimestamp(r.updated_at),
              scheduledAt: r.scheduled_at == null ? null : readTimestamp(r.scheduled_at),
            },
          ],
    ),
  };
}
