import { sql } from 'drizzle-orm';
import { queryRows, type Db, type Executor, type Tx } from '../db/client.js';
import { getStatusesInCategories, type RunStatus } from '../lifecycle/lifecycle.js';
import type { Logger } from '../logger.js';

/**
 * What is deleted, and when (records.md):
 *   - runs DONE for longer than RETENTION_DAYS, with their steps, history and points, a few at a
 *     time (deleteRunTrees, also behind the admin's deleteRun);
 *   - measurement partitions (a week of points each, migration 0018) that ended longer ago than
 *     that, dropped whole; older points in the default partition, deleted a few at a time;
 *   - idempotency records older than IDEMPOTENCY_TTL_HOURS.
 * Each step is its own short transaction, taken by one instance at a time (an advisory lock that
 * the others skip), so retention runs once across instances and never holds locks for long.
 * The weeks ahead get their partitions here too, so points never pile up in the default one.
 */

const DONE: readonly RunStatus[] = getStatusesInCategories(['DONE']);

/** pg_try_advisory_xact_lock keys: one per kind of work, so different kinds may overlap. */
const LOCK = {
  runs: 7_301_001,
  partitions: 7_301_002,
  keys: 7_301_003,
  points: 7_301_004,
} as const;
/** How often the log's head is marked with the time (change_log_marks). */
const MARK_EVERY_MINUTES = 10;

const WEEK_MS = 7 * 24 * 3600 * 1000;
/** Weeks ahead that always have a partition (the current one and the next two). */
const WEEKS_AHEAD = 2;

export interface RetentionOptions {
  /** Days a DONE run (and a point) is kept; null: for ever. */
  retentionDays: number | null;
  /** Hours an idempotency record is kept (default 24). */
  idempotencyTtlHours: number;
  /** Runs (trees) and rows deleted per statement (default 200). */
  batchSize?: number;
}

export interface RetentionPass {
  /** Steps that failed (each its own transaction; the others went on). */
  failed: { step: string; error: unknown }[];
  runsDeleted: number;
  keysDeleted: number;
  pointsDeleted: number;
  partitionsDropped: string[];
  partitionsMade: string[];
  /** Whether a batch was full: more is waiting, so the next pass should come soon. */
  more: boolean;
}

/** Deleting runs: what is refused, in the words a client reads. */
export type DeleteRefusal =
  | { kind: 'notDone'; runId: string; status: RunStatus }
  | { kind: 'awaited'; runId: string; downstreamId: string }
  | { kind: 'recent'; runId: string };

/**
 * Delete whole trees (a run with its steps, their history, points and keys) in one statement,
 * with the counts kept exact: each deleted run's status as of the counts' position leaves
 * run_counts and its parent's run_child_counts (its log rows after the position go with it).
 * The position row is locked first, so no fold moves it meanwhile. Every run of the trees must
 * be DONE and none may be awaited by a run outside them that is not done; otherwise nothing is
 * deleted and the refusal says why. `advanceHorizon`: the log's ids deleted raise the horizon
 * below which cursors expire (retention); an admin's deleteRun leaves it (the run is gone, and
 * every other change is still there to replay).
 */
export async function deleteRunTrees(
  tx: Tx,
  rootIds: readonly string[],
  advanceHorizon: boolean,
  /** Retention: refuse a tree with a change logged after this id (see change_log_marks). */
  loggedThrough: number | null = null,
): Promise<{ deleted: number; refusal: DeleteRefusal | null }> {
  if (rootIds.length === 0) return { deleted: 0, refusal: null };
  const roots = JSON.stringify(rootIds);
  await tx.execute(sql`SELECT through_id FROM run_counts_position WHERE id = 1 FOR UPDATE`);
  // Parents first, as transitions lock (ORDER BY depth, id). Read again once locked: a step
  // created after the first read's snapshot, before the locks, is found by the second.
  const lockTree = () =>
    queryRows<{ id: string; status: RunStatus; logged: string | number | null }>(
      tx,
      sql`
      /* lockRunTrees */
      WITH RECURSIVE tree(id) AS (
        SELECT id FROM runs WHERE id IN (SELECT jsonb_array_elements_text(${roots}::jsonb)::uuid)
        UNION ALL
        SELECT r.id FROM runs r JOIN tree t ON r.parent_id = t.id
      )
      SELECT r.id, r.status,
             (SELECT max(c.id) FROM status_changes c WHERE c.run_id = r.id) AS logged
      FROM runs r JOIN tree USING (id) ORDER BY r.depth, r.id FOR UPDATE OF r`,
    );
  let tree = await lockTree();
  for (let again = 0; again < 3; again++) {
    const reread = await lockTree();
    const same = reread.length === tree.length && reread.every((r, i) => r.id === tree[i]!.id);
    tree = reread;
    if (same) break;
  }
  if (loggedThrough != null) {
    const recent = tree.find((r) => r.logged != null && Number(r.logged) > loggedThrough);
    if (recent) return { deleted: 0, refusal: { kind: 'recent', runId: recent.id } };
  }
  const notDone = tree.find((r) => !DONE.includes(r.status));
  if (notDone) {
    return { deleted: 0, refusal: { kind: 'notDone', runId: notDone.id, status: notDone.status } };
  }
  const ids = JSON.stringify(tree.map((r) => r.id));
  const [awaited] = await queryRows<{ upstream_id: string; run_id: string }>(
    tx,
    sql`
    /* findAwaitedRuns */
    WITH tree AS (SELECT jsonb_array_elements_text(${ids}::jsonb)::uuid AS id),
    edges AS (
      SELECT upstream_id, run_id FROM run_dependencies WHERE upstream_id IN (SELECT id FROM tree)
      UNION ALL
      SELECT ref_id, run_id FROM run_event_triggers WHERE ref_id IN (SELECT id FROM tree)
    )
    SELECT e.upstream_id, e.run_id FROM edges e JOIN runs r ON r.id = e.run_id
    WHERE e.run_id NOT IN (SELECT id FROM tree) AND r.status <> ALL(${`{${DONE.join(',')}}`}::run_status[])
    LIMIT 1`,
  );
  if (awaited) {
    return {
      deleted: 0,
      refusal: { kind: 'awaited', runId: awaited.upstream_id, downstreamId: awaited.run_id },
    };
  }
  const [result] = await queryRows<{ deleted: string | number }>(
    tx,
    sql`
    /* deleteRunTrees */
    WITH tree AS (SELECT jsonb_array_elements_text(${ids}::jsonb)::uuid AS id),
    pos AS (SELECT through_id FROM run_counts_position WHERE id = 1),
    -- Each run's status as of the position: what run_counts and run_child_counts hold of it.
    counted AS (
      SELECT DISTINCT ON (c.run_id) c.run_id, c.project, c.parent_id, c.to_status AS status
      FROM status_changes c, pos
      WHERE c.run_id IN (SELECT id FROM tree) AND c.id <= pos.through_id
      ORDER BY c.run_id, c.id DESC
    ),
    roots_counted AS (
      UPDATE run_counts AS rc SET n = rc.n - g.n
      FROM (SELECT project, parent_id IS NULL AS is_root, status, count(*) AS n
            FROM counted GROUP BY 1, 2, 3) AS g
      WHERE rc.project = g.project AND rc.is_root = g.is_root AND rc.status = g.status
      RETURNING 1
    ),
    -- Steps of a parent that stays; a deleted parent's own rows go.
    steps_counted AS (
      UPDATE run_child_counts AS cc SET n = cc.n - g.n
      FROM (SELECT parent_id, status, count(*) AS n FROM counted
            WHERE parent_id IS NOT NULL AND parent_id NOT IN (SELECT id FROM tree)
            GROUP BY 1, 2) AS g
      WHERE cc.parent_id = g.parent_id AND cc.status = g.status
      RETURNING 1
    ),
    parents_gone AS (
      DELETE FROM run_child_counts WHERE parent_id IN (SELECT id FROM tree) RETURNING 1
    ),
    horizon AS (
      UPDATE change_log_horizon SET through_id = greatest(through_id, (
        SELECT coalesce(max(id), 0) FROM status_changes WHERE run_id IN (SELECT id FROM tree)))
      WHERE id = 1 AND ${advanceHorizon}
      RETURNING 1
    ),
    deleted AS (
      DELETE FROM runs WHERE id IN (SELECT jsonb_array_elements_text(${roots}::jsonb)::uuid)
      RETURNING 1
    )
    SELECT (SELECT count(*) FROM deleted) AS deleted,
           (SELECT count(*) FROM roots_counted) + (SELECT count(*) FROM steps_counted)
         + (SELECT count(*) FROM parents_gone) + (SELECT count(*) FROM horizon) AS touched`,
  );
  return { deleted: tree.length > 0 ? Number(result?.deleted ?? 0) : 0, refusal: null };
}

/** The id below which change-log cursors have expired (0: nothing was deleted). */
export async function getLogHorizon(ex: Executor): Promise<number> {
  const [row] = await queryRows<{ through_id: string | number }>(
    ex,
    sql`/* logHorizon */ SELECT through_id FROM change_log_horizon WHERE id = 1`,
  );
  return Number(row?.through_id ?? 0);
}

/** The Monday (00:00 UTC) of the week holding `at`. */
export function weekOf(at: Date): Date {
  const day = new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate()));
  return new Date(day.getTime() - ((day.getUTCDay() + 6) % 7) * 24 * 3600 * 1000);
}

/** A week's partition: measurements_pYYYYMMDD, its Monday. */
export function partitionName(monday: Date): string {
  return `measurements_p${monday.toISOString().slice(0, 10).replaceAll('-', '')}`;
}

/** One retention pass (see the top of this file), at `now`. */
export async function runRetentionPass(
  db: Db,
  options: RetentionOptions,
  now: Date = new Date(),
): Promise<RetentionPass> {
  const batch = options.batchSize ?? 200;
  const pass: RetentionPass = {
    failed: [],
    runsDeleted: 0,
    keysDeleted: 0,
    pointsDeleted: 0,
    partitionsDropped: [],
    partitionsMade: [],
    more: false,
  };
  const cutoff =
    options.retentionDays == null
      ? null
      : new Date(now.getTime() - options.retentionDays * 24 * 3600 * 1000);

  const step = async (name: string, key: number, work: (tx: Tx) => Promise<void>) => {
    try {
      await onlyOne(db, key, work);
    } catch (error) {
      pass.failed.push({ step: name, error });
    }
  };

  await step('measurement partitions', LOCK.partitions, async (tx) => {
    const existing = new Set(await listPartitions(tx));
    for (let week = 0; week <= WEEKS_AHEAD; week++) {
      const monday = new Date(weekOf(now).getTime() + week * WEEK_MS);
      const name = partitionName(monday);
      if (existing.has(name)) continue;
      await makePartition(tx, name, monday);
      pass.partitionsMade.push(name);
    }
    if (cutoff == null) return;
    for (const name of existing) {
      const monday = new Date(
        `${name.slice(14, 18)}-${name.slice(18, 20)}-${name.slice(20, 22)}T00:00:00Z`,
      );
      if (monday.getTime() + WEEK_MS > cutoff.getTime()) continue;
      await tx.execute(sql.raw(`DROP TABLE "${name}"`));
      pass.partitionsDropped.push(name);
    }
  });

  // Apart from the partitions' DDL, whose lock on measurements would block every point meanwhile.
  if (cutoff != null) {
    await step('old points', LOCK.points, async (tx) => {
      // Points older than the first week made (imports, or from before migration 0018).
      pass.pointsDeleted = await deleteOlder(tx, 'measurements_default', 'at', cutoff, batch * 50);
      if (pass.pointsDeleted === batch * 50) pass.more = true;
    });
  }

  await step('idempotency keys', LOCK.keys, async (tx) => {
    const before = new Date(now.getTime() - options.idempotencyTtlHours * 3600 * 1000);
    for (const table of ['transition_keys', 'measurement_keys']) {
      const gone = await deleteOlder(tx, table, 'created_at', before, batch * 10);
      pass.keysDeleted += gone;
      if (gone === batch * 10) pass.more = true;
    }
  });

  if (cutoff == null) return pass;
  await step('runs', LOCK.runs, async (tx) => {
    // Where the log's head was at the cutoff: a run with a change logged after it stays, however
    // old its own times (an import), so deleting it cannot expire recent cursors.
    const [mark] = await queryRows<{ through_id: string | number | null }>(
      tx,
      sql`
      /* markLogHead */
      WITH made AS (
        INSERT INTO change_log_marks (at, through_id)
        SELECT date_trunc('milliseconds', now()), coalesce(max(id), 0) FROM status_changes
        HAVING NOT EXISTS (
          SELECT 1 FROM change_log_marks
          WHERE at > now() - make_interval(mins => ${MARK_EVERY_MINUTES}))
        RETURNING 1
      ),
      pruned AS (
        DELETE FROM change_log_marks
        WHERE at < (SELECT max(at) FROM change_log_marks
                    WHERE at < ${cutoff.toISOString()}::timestamptz)
        RETURNING 1
      )
      SELECT coalesce(
        (SELECT max(through_id) FROM change_log_marks
         WHERE at < ${cutoff.toISOString()}::timestamptz),
        (SELECT through_id FROM change_log_marks ORDER BY at LIMIT 1), 0) AS through_id,
        (SELECT count(*) FROM made) + (SELECT count(*) FROM pruned) AS touched`,
    );
    const loggedThrough = Number(mark?.through_id ?? 0);
    // Roots whose tree is done; a tree with a step still going waits for it.
    const candidates = await queryRows<{ id: string }>(
      tx,
      sql`
      /* findExpiredRuns */
      SELECT id FROM runs r
      WHERE parent_id IS NULL AND finished_at < ${cutoff.toISOString()}::timestamptz
        AND status = ANY(${`{${DONE.join(',')}}`}::run_status[])
      ORDER BY finished_at LIMIT ${batch}`,
    );
    for (const { id } of candidates) {
      // Each tree on its own: a refused one (a step still going, a run waiting for it, a
      // change logged after the cutoff) writes nothing and stays, the others go.
      pass.runsDeleted += (await deleteRunTrees(tx, [id], true, loggedThrough)).deleted;
    }
    if (candidates.length === batch && pass.runsDeleted > 0) pass.more = true;
  });
  return pass;
}

/**
 * A week's partition. Points of that week that reached the default partition first (the service
 * was down when the week began, say) are moved into it: PostgreSQL refuses a partition whose
 * range the default partition holds rows of.
 */
async function makePartition(tx: Tx, name: string, monday: Date): Promise<void> {
  const from = `'${monday.toISOString()}'`;
  const to = `'${new Date(monday.getTime() + WEEK_MS).toISOString()}'`;
  // Points arriving meanwhile wait (the default partition is locked) rather than land there.
  await tx.execute(sql`LOCK TABLE measurements_default IN EXCLUSIVE MODE`);
  const [held] = await queryRows<{ held: boolean }>(
    tx,
    sql.raw(
      `SELECT EXISTS (SELECT 1 FROM measurements_default WHERE at >= ${from} AND at < ${to}) AS held`,
    ),
  );
  if (!held?.held) {
    await tx.execute(
      sql.raw(
        `CREATE TABLE "${name}" PARTITION OF measurements FOR VALUES FROM (${from}) TO (${to})`,
      ),
    );
    return;
  }
  await tx.execute(
    sql.raw(`CREATE TABLE "${name}" (LIKE measurements INCLUDING DEFAULTS INCLUDING CONSTRAINTS)`),
  );
  await tx.execute(
    sql.raw(
      `WITH moved AS (DELETE FROM measurements_default WHERE at >= ${from} AND at < ${to} RETURNING *) ` +
        `INSERT INTO "${name}" SELECT * FROM moved`,
    ),
  );
  await tx.execute(
    sql.raw(
      `ALTER TABLE measurements ATTACH PARTITION "${name}" FOR VALUES FROM (${from}) TO (${to})`,
    ),
  );
}

/** Delete up to `limit` rows of `table` whose `column` is before `before`; answers how many. */
async function deleteOlder(
  tx: Tx,
  table: string,
  column: string,
  before: Date,
  limit: number,
): Promise<number> {
  const [gone] = await queryRows<{ n: string | number }>(
    tx,
    sql`
    /* expireRows */
    WITH gone AS (
      DELETE FROM ${sql.identifier(table)} WHERE ctid IN (
        SELECT ctid FROM ${sql.identifier(table)}
        WHERE ${sql.identifier(column)} < ${before.toISOString()}::timestamptz LIMIT ${limit})
      RETURNING 1)
    SELECT count(*) AS n FROM gone`,
  );
  return Number(gone?.n ?? 0);
}

/** Run `work` in a transaction if no other instance holds `key`; skip it otherwise. */
async function onlyOne(db: Db, key: number, work: (tx: Tx) => Promise<void>): Promise<void> {
  await db.transaction(async (tx) => {
    const [row] = await queryRows<{ ok: boolean }>(
      tx,
      sql`SELECT pg_try_advisory_xact_lock(${key}) AS ok`,
    );
    if (row?.ok) await work(tx);
  });
}

/** The weekly partitions of measurements (not the default one). */
async function listPartitions(ex: Executor): Promise<string[]> {
  const rows = await queryRows<{ name: string }>(
    ex,
    sql`
    /* listMeasurementPartitions */
    SELECT c.relname AS name FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'measurements'::regclass AND c.relname ~ '^measurements_p[0-9]{8}$'`,
  );
  return rows.map((r) => r.name);
}

/**
 * Retention on a timer beside the reaper: a pass every `intervalMs`, sooner while batches come
 * back full. Logs what it deleted.
 */
export function createRetention(deps: {
  db: Db;
  logger: Logger;
  options: RetentionOptions;
  intervalMs?: number;
}): { pass(): Promise<void> } {
  const intervalMs = deps.intervalMs ?? 60_000;
  let next = 0;
  return {
    async pass() {
      if (Date.now() < next) return;
      const done = await runRetentionPass(deps.db, deps.options);
      next = done.more ? 0 : Date.now() + intervalMs;
      for (const { step, error } of done.failed)
        deps.logger.warn({ err: error }, `retention: ${step} failed; tried again next pass`);
      if (
        done.runsDeleted ||
        done.keysDeleted ||
        done.pointsDeleted ||
        done.partitionsDropped.length ||
        done.partitionsMade.length
      ) {
        const { more: _more, failed: _failed, ...what } = done;
        deps.logger.info(what, 'retention pass');
      }
    },
  };
}
