import { sql, type SQL } from 'drizzle-orm';
import { arrayLiteral, queryRows, type Db, type Executor } from '../db/client.js';
import type { RunStatus } from '../lifecycle/lifecycle.js';

/**
 * Runs per status, exact and cheap: run_counts holds the counts as of a change-log id
 * (run_counts_position), and the change-log rows after it are added in the same statement (each
 * row is +1 for its `to`, -1 for its `from`). One snapshot, so the answer is exact; nothing is
 * written per change. The reaper folds the log into run_counts about once a second, up to its
 * tail's position (below which no change can still commit), so the rows added at read time stay
 * few. run_child_counts does the same per parent, for `childCounts`. What the tables cannot answer
 * (tags, names, dates) is counted from runs.
 */

export interface CountScope {
  /** The projects counted (the filter's and the token's); null: every project. */
  projects: readonly string[] | null;
  /** true: runs without a parent; false: steps; null: both. */
  roots: boolean | null;
  /** Only this run's steps (from run_child_counts); null: any parent. */
  parentId?: string | null;
}

export async function countRunsByStatus(
  ex: Executor,
  scope: CountScope,
): Promise<Map<RunStatus, number>> {
  if (scope.projects != null && scope.projects.length === 0) return new Map();
  const projects = (column: SQL) =>
    scope.projects == null
      ? sql`true`
      : sql`${column} = ANY(${arrayLiteral(scope.projects)}::text[])`;
  if (scope.parentId != null) {
    // Steps are never roots, and live in their parent's project.
    if (scope.roots === true) return new Map();
    return countChildren(ex, scope.parentId, projects(sql`p.project`));
  }
  const roots = (isRoot: SQL) =>
    scope.roots == null ? sql`true` : sql`${isRoot} = ${scope.roots}`;
  return countAsOfPosition(
    ex,
    sql`SELECT status, n FROM run_counts WHERE ${projects(sql`project`)} AND ${roots(sql`is_root`)}`,
    sql`${projects(sql`c.project`)} AND ${roots(sql`(c.parent_id IS NULL)`)}`,
  );
}

/** A parent's steps per status: run_child_counts plus the parent's log rows after the position. */
function countChildren(
  ex: Executor,
  parentId: string,
  parentInProjects: SQL,
): Promise<Map<RunStatus, number>> {
  return countAsOfPosition(
    ex,
    sql`SELECT status, n FROM run_child_counts WHERE parent_id = ${parentId}`,
    sql`c.parent_id = ${parentId}`,
    sql`EXISTS (SELECT 1 FROM runs p WHERE p.id = ${parentId} AND ${parentInProjects})`,
  );
}

/**
 * Counts per status in one statement (one snapshot, so exact): `base` (rows of status and n, as
 * of the fold position) plus the change-log rows after the position that `logWhere` picks (on
 * `c`), each +1 for its `to` and -1 for its `from`; nothing unless `gate` holds.
 */
async function countAsOfPosition(
  ex: Executor,
  base: SQL,
  logWhere: SQL,
  gate: SQL = sql`true`,
): Promise<Map<RunStatus, number>> {
  const rows = await queryRows<{ status: RunStatus; n: string | number }>(
    ex,
    sql`
    /* countRunsByStatus */
    WITH pos AS (SELECT through_id FROM run_counts_position WHERE id = 1),
    recent AS (
      SELECT c.from_status, c.to_status FROM status_changes c, pos
      WHERE c.id > pos.through_id AND ${logWhere}
    )
    SELECT status, sum(n) AS n FROM (
      ${base}
      UNION ALL SELECT to_status, 1 FROM recent
      UNION ALL SELECT from_status, -1 FROM recent WHERE from_status IS NOT NULL
    ) AS t
    WHERE ${gate}
    GROUP BY status HAVING sum(n) <> 0`,
  );
  return new Map(rows.map((r) => [r.status, Number(r.n)]));
}

/**
 * Fold the change log up to `head` (this instance's tail position: every change at or below it
 * has committed or never will) into run_counts and run_child_counts. Whoever changes the counts
 * (a fold, a deletion: retention.ts) first locks the position row, in a statement of its own, and
 * then works in a later statement, whose snapshot sees everything the previous holder
 * committed: a fold that took its snapshot before a deletion committed would fold the deleted
 * runs' log rows back in. So a log row is folded once, and never one that is gone. A fold behind
 * the position does nothing. Rows that fall to zero stay (reads leave zeros out). Answers how
 * many log rows were folded.
 */
export async function foldCountsLog(db: Db, head: number): Promise<number> {
  return db.transaction(async (tx) => {
    await tx.execute(
      sql`/* lockCountsPosition */ SELECT through_id FROM run_counts_position WHERE id = 1 FOR UPDATE`,
    );
    return foldLockedLog(tx, head);
  });
}

async function foldLockedLog(tx: Executor, head: number): Promise<number> {
  const [folded] = await queryRows<{ n: string | number }>(
    tx,
    sql`
    /* foldCountsLog */
    WITH pos AS (SELECT through_id FROM run_counts_position WHERE id = 1),
    moved AS (
      SELECT c.project, c.parent_id, c.to_status AS status, 1 AS d
      FROM status_changes c, pos WHERE c.id > pos.through_id AND c.id <= ${head}
      UNION ALL
      SELECT c.project, c.parent_id, c.from_status, -1
      FROM status_changes c, pos
      WHERE c.id > pos.through_id AND c.id <= ${head} AND c.from_status IS NOT NULL
    ),
    summed AS (
      SELECT project, parent_id IS NULL AS is_root, status, sum(d) AS n
      FROM moved GROUP BY project, parent_id IS NULL, status
    ),
    upserted AS (
      INSERT INTO run_counts (project, is_root, status, n)
      SELECT project, is_root, status, n FROM summed WHERE n <> 0
      ON CONFLICT (project, is_root, status) DO UPDATE SET n = run_counts.n + excluded.n
      RETURNING 1
    ),
    children AS (
      INSERT INTO run_child_counts (parent_id, status, n)
      SELECT parent_id, status, sum(d) FROM moved WHERE parent_id IS NOT NULL
      GROUP BY parent_id, status HAVING sum(d) <> 0
      ON CONFLICT (parent_id, status) DO UPDATE SET n = run_child_counts.n + excluded.n
      RETURNING 1
    ),
    advanced AS (
      UPDATE run_counts_position AS p SET through_id = ${head}
      FROM pos WHERE p.id = 1 AND pos.through_id < ${head}
      RETURNING 1
    )
    SELECT (SELECT count(*) FROM moved WHERE d = 1) AS n,
           (SELECT count(*) FROM upserted) AS upserted,
           (SELECT count(*) FROM children) AS children,
           (SELECT count(*) FROM advanced) AS advanced`,
  );
  return Number(folded?.n ?? 0);
}
