import { and, asc, eq, getTableColumns, gt, inArray, lte, sql, type SQL } from 'drizzle-orm';
import { queryRows, type Executor } from '../db/client.js';
import { statusChanges, type StatusChangeRow } from '../db/schema.js';
import { type RunStatus } from '../lifecycle/lifecycle.js';
import { readTimestamp } from '../timestamps.js';

/** SQL of the change log (status_changes) only: no rules here. */

export interface NewStatusChange {
  runId: string;
  project: string;
  fromStatus: RunStatus | null;
  toStatus: RunStatus;
  version: number;
  reason: string | null;
  message: string | null;
  /** Recorded with the status (a dialect's outcome, or the reporter's); null or absent: none. */
  outcome?: string | null;
  /** The worker's exit code; null or absent: none. */
  exitCode?: number | null;
  /** A JSON object reported with the change; null or absent: none. */
  meta?: Record<string, unknown> | null;
  /** The run's attempt after the change. */
  attempt: number;
  at: Date;
  forced?: boolean;
  /** The acting token's name; null for the service's own moves (the reaper). */
  actor: string | null;
  /** The run's parent (a pipeline's changes are read by it); null or absent: none. */
  parentId?: string | null;
}

const changeColumns = (() => {
  const { txId: _txId, ...columns } = getTableColumns(statusChanges);
  return columns;
})();

/**
 * INSERT of change-log rows, ids in the given order, each with the xid of a CTE `tx` the
 * statement must define first (kept on the row for diagnostics; the change-log tail's gap rule
 * relies on the table lock every INSERT holds, not on xids: see change-log-tail.ts).
 */
export function insertStatusChangesSql(changes: readonly NewStatusChange[]): SQL {
  return sql`
    INSERT INTO status_changes (tx_id, run_id, project, from_status, to_status, version, reason, message, outcome, exit_code, meta, attempt, at, forced, actor, parent_id)
    SELECT tx.xid, c.run_id, c.project, c.from_status::run_status, c.to_status::run_status,
           c.version, c.reason, c.message, c.outcome, c.exit_code, c.meta, c.attempt, c.at,
           coalesce(c.forced, false), c.actor, c.parent_id
    FROM tx, ROWS FROM (
      jsonb_to_recordset(${JSON.stringify(changes)}::jsonb) AS ("runId" uuid, project text, "fromStatus" text,
        "toStatus" text, version int, reason text, message text, outcome text, "exitCode" int,
        meta jsonb, attempt int, at timestamptz, forced boolean, actor text, "parentId" uuid)
    ) WITH ORDINALITY AS c(run_id, project, from_status, to_status, version, reason, message, outcome, exit_code, meta, attempt, at, forced, actor, parent_id, n)
    ORDER BY c.n
    RETURNING ${RETURNED}`;
}

/** The columns raw SQL reads of a status_changes row (mapStatusChangeRow maps them). */
const RETURNED = sql.raw(
  'id, run_id, project, from_status, to_status, version, reason, message, outcome, exit_code, meta, attempt, at, forced, actor, parent_id',
);

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
  outcome?: string | null;
  exit_code?: number | null;
  meta?: Record<string, unknown> | string | null;
  attempt?: number | null;
  at: string | Date;
  forced?: boolean | null;
  actor?: string | null;
  parent_id?: string | null;
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
    outcome: row.outcome ?? null,
    exitCode: row.exit_code ?? null,
    meta:
      typeof row.meta === 'string'
        ? (JSON.parse(row.meta) as Record<string, unknown>)
        : (row.meta ?? null),
    attempt: row.attempt ?? 1,
    forced: row.forced === true,
    actor: row.actor ?? null,
    parentId: row.parent_id ?? null,
    at: readTimestamp(row.at),
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

export interface StatusChangeQuery {
  runIds?: readonly string[] | null;
  projects?: readonly string[] | null;
  /** null: any status; an empty list matches nothing. */
  statuses: readonly RunStatus[] | null;
  /** Changes of this run's children. */
  parentId?: string | null;
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
  if (q.parentId != null) conditions.push(eq(statusChanges.parentId, q.parentId));
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

/** The change log from `afterId` on, in id order: the rows visible now (the tail's read). */
export async function listChangesAfter(
  ex: Executor,
  afterId: number,
  limit: number,
): Promise<StatusChangeRow[]> {
  const rows = await queryRows<RawStatusChange>(
    ex,
    sql`
    /* tailChangeLog */
    SELECT ${RETURNED}
    FROM status_changes WHERE id > ${afterId} ORDER BY id LIMIT ${limit}`,
  );
  return rows.map(mapStatusChangeRow);
}

/** The highest id in the log now (0 when empty). */
export async function findLogEnd(ex: Executor): Promise<number> {
  const [row] = await queryRows<{ max: string | number }>(
    ex,
    sql`/* tailStart */ SELECT coalesce(max(id), 0) AS max FROM status_changes`,
  );
  return Number(row!.max);
}

/** A transaction holding a RowExclusiveLock on status_changes: its virtual xid and backend pid. */
export interface ChangeLogWriter {
  vxid: string;
  pid: number | null;
}

/**
 * The transactions (other than this session's) that hold a RowExclusiveLock on status_changes
 * in this database, now: every writer of the log holds one from before it takes an id until it
 * ends (see change-log-tail.ts). With `among`, only those of them still holding it (a virtual
 * xid is never reused for another transaction), and any prepared transaction (pid null): its
 * virtual xid changes to -1/<xid> when it is prepared, so it is kept whatever it was listed as.
 */
export async function listChangeLogWriters(
  ex: Executor,
  among?: readonly ChangeLogWriter[],
): Promise<ChangeLogWriter[]> {
  if (among?.length === 0) return [];
  const vxids = among ? `{${among.map((w) => `"${w.vxid}"`).join(',')}}` : null;
  const rows = await queryRows<{ vxid: string; pid: number | null }>(
    ex,
    sql`
    /* tailWriters */
    SELECT l.virtualtransaction AS vxid, l.pid
    FROM pg_locks l
    WHERE l.locktype = 'relation' AND l.mode = 'RowExclusiveLock' AND l.granted
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND l.relation = 'status_changes'::regclass
      AND l.pid IS DISTINCT FROM pg_backend_pid()
      ${vxids ? sql`AND (l.virtualtransaction = ANY(${vxids}::text[]) OR l.pid IS NULL)` : sql``}`,
  );
  return rows.map((r) => ({ vxid: r.vxid, pid: r.pid == null ? null : Number(r.pid) }));
}
