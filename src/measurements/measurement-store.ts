import { and, asc, between, desc, eq, inArray, sql, type SQL } from 'drizzle-orm';
import { queryRows, type Executor } from '../db/client.js';
import { measurementKeys, measurements, type MeasurementRow } from '../db/schema.js';

/** SQL only. */

export interface NewMeasurement {
  name: string;
  value: number;
  step: number | null;
  at: Date | null;
}

interface RawMeasurement {
  id: string | number;
  run_id: string;
  name: string;
  value: number | string;
  step: number | null;
  at: string | Date;
  tx_id?: string;
}

function toMeasurementRow(raw: RawMeasurement): MeasurementRow {
  return {
    id: Number(raw.id),
    runId: raw.run_id,
    name: raw.name,
    value: Number(raw.value),
    step: raw.step,
    at: raw.at instanceof Date ? raw.at : new Date(raw.at),
  };
}

/**
 * One multi-row INSERT for the whole batch, the rows passed as a single JSON parameter (no limit
 * on bound parameters, one plan). A missing run fails the foreign key (23503).
 */
export async function insertMeasurements(
  ex: Executor,
  runId: string,
  points: readonly NewMeasurement[],
  /** Whether to read the rows back (someone here subscribes to them); else only their ids. */
  withRows: boolean,
): Promise<WrittenMeasurements> {
  const insert = sql`
    INSERT INTO measurements (run_id, name, value, step, at)
    SELECT ${runId}::uuid, p.name, p.value, p.step, coalesce(p.at, now())
    FROM ROWS FROM (
      jsonb_to_recordset(${JSON.stringify(points)}::jsonb) AS (name text, value float8, step int, at timestamptz)
    ) WITH ORDINALITY AS p(name, value, step, at, n)
    ORDER BY p.n`;
  if (!withRows) {
    const [written] = await queryRows<{
      first_id: string | number;
      last_id: string | number;
      count: string | number;
      tx_id: string;
    }>(
      ex,
      sql`
      /* insertMeasurementsQuietly */
      WITH inserted AS (${insert} RETURNING id)
      SELECT min(id) AS first_id, max(id) AS last_id, count(*) AS count,
             pg_current_xact_id()::text AS tx_id
      FROM inserted`,
    );
    return {
      rows: null,
      firstId: Number(written!.first_id),
      lastId: Number(written!.last_id),
      count: Number(written!.count),
      txId: written!.tx_id,
    };
  }
  const rows = await queryRows<RawMeasurement>(
    ex,
    sql`
    /* insertMeasurements */
    ${insert}
    RETURNING id, run_id, name, value, step, at, tx_id::text AS tx_id`,
  );
  const mapped = rows.map(toMeasurementRow);
  return {
    rows: mapped,
    firstId: mapped[0]!.id,
    lastId: mapped.at(-1)!.id,
    count: mapped.length,
    txId: rows[0]!.tx_id!,
  };
}

/** What one insertMeasurements wrote: its ids run from firstId to lastId, all with txId. */
export interface WrittenMeasurements {
  rows: MeasurementRow[] | null;
  firstId: number;
  lastId: number;
  count: number;
  txId: string;
}

/** The points one batch wrote (by its id range and transaction), in id order. */
export async function listWrittenMeasurements(
  ex: Executor,
  runId: string,
  firstId: number,
  lastId: number,
  txId: string,
): Promise<MeasurementRow[]> {
  return ex
    .select()
    .from(measurements)
    .where(
      and(
        eq(measurements.runId, runId),
        between(measurements.id, firstId, lastId),
        sql`${measurements.txId} = ${txId}::xid8`,
      ),
    )
    .orderBy(asc(measurements.id));
}

export interface MeasurementQuery {
  runId: string;
  names: readonly string[] | null;
  after: { at: Date; id: number } | null;
  limit: number;
}

/** A run's points in time order, keyset-paginated on (at, id). */
export async function listMeasurements(
  ex: Executor,
  q: MeasurementQuery,
): Promise<MeasurementRow[]> {
  if (q.names != null && q.names.length === 0) return [];
  const conditions: (SQL | undefined)[] = [eq(measurements.runId, q.runId)];
  if (q.names != null) conditions.push(inArray(measurements.name, [...q.names]));
  if (q.after) {
    conditions.push(
      sql`(${measurements.at}, ${measurements.id}) > (${q.after.at.toISOString()}::timestamptz, ${q.after.id})`,
    );
  }
  return ex
    .select()
    .from(measurements)
    .where(and(...conditions))
    .orderBy(asc(measurements.at), asc(measurements.id))
    .limit(q.limit);
}

/** The newest point of each name, for several runs at once (one index walk per run and name). */
export async function listLatestMeasurements(
  ex: Executor,
  runIds: readonly string[],
): Promise<MeasurementRow[]> {
  if (runIds.length === 0) return [];
  return ex
    .selectDistinctOn([measurements.runId, measurements.name])
    .from(measurements)
    .where(inArray(measurements.runId, [...runIds]))
    .orderBy(measurements.runId, measurements.name, desc(measurements.at), desc(measurements.id));
}

/**
 * Claim (run, key) for a batch of `count` points. Answers null when this call claimed it (write
 * the points), or the first batch's count when the key was used before. A concurrent claim of
 * the same key waits for the first one's transaction, then sees it.
 */
export async function claimMeasurementKey(
  ex: Executor,
  runId: string,
  key: string,
  count: number,
): Promise<number | null> {
  const claimed = await ex
    .insert(measurementKeys)
    .values({ runId, key, count })
    .onConflictDoNothing()
    .returning({ count: measurementKeys.count });
  if (claimed.length > 0) return null;
  const [first] = await ex
    .select({ count: measurementKeys.count })
    .from(measurementKeys)
    .where(and(eq(measurementKeys.runId, runId), eq(measurementKeys.key, key)));
  return first!.count;
}
