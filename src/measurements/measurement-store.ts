import { and, eq, inArray, sql, type SQL } from 'drizzle-orm';
import { queryRows, type Executor } from '../db/client.js';
import { measurementKeys, measurements, type MeasurementRow } from '../db/schema.js';
import { readTimestamp } from '../timestamps.js';

/** SQL only. */

/** A point to write: exactly one of `value` and `data` is set (the table's CHECK holds it). */
export interface NewMeasurement {
  name: string;
  value: number | null;
  /** Any JSON but null and a bare number; absent (undefined) for a numeric point. */
  data?: unknown;
  step: number | null;
  at: Date | null;
}

interface RawMeasurement {
  id: string | number;
  run_id: string;
  name: string;
  value: number | string | null;
  /** `data::text`: read as text and parsed here, so a JSON string stays a string. */
  data: string | null;
  step: number | null;
  at: string | Date;
  tx_id?: string;
}

/**
 * The columns of a point as toMeasurementRow reads them. `data` goes as text: drizzle's jsonb
 * decoder parses any string it is handed once more, so the JSON string "1" would come back as the
 * number 1 (the drivers have parsed it already).
 */
const POINT_COLUMNS = sql.raw('id, run_id, name, value, data::text AS data, step, at');

function toMeasurementRow(raw: RawMeasurement): MeasurementRow {
  return {
    id: Number(raw.id),
    runId: raw.run_id,
    name: raw.name,
    value: raw.value == null ? null : Number(raw.value),
    data: raw.data == null ? null : JSON.parse(raw.data),
    step: raw.step,
    at: readTimestamp(raw.at),
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
    INSERT INTO measurements (run_id, name, value, data, step, at)
    SELECT ${runId}::uuid, p.name, p.value, p.data, p.step, coalesce(p.at, now())
    FROM ROWS FROM (
      jsonb_to_recordset(${JSON.stringify(points)}::jsonb)
        AS (name text, value float8, data jsonb, step int, at timestamptz)
    ) WITH ORDINALITY AS p(name, value, data, step, at, n)
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
    RETURNING ${POINT_COLUMNS}, tx_id::text AS tx_id`,
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
  const rows = await queryRows<RawMeasurement>(
    ex,
    sql`
    /* listWrittenMeasurements */
    SELECT ${POINT_COLUMNS} FROM measurements
    WHERE run_id = ${runId}::uuid AND id BETWEEN ${firstId} AND ${lastId}
      AND tx_id = ${txId}::xid8
    ORDER BY id`,
  );
  return rows.map(toMeasurementRow);
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
  const rows = await queryRows<RawMeasurement>(
    ex,
    sql`
    /* listMeasurements */
    SELECT ${POINT_COLUMNS} FROM measurements
    WHERE ${and(...conditions)}
    ORDER BY at, id
    LIMIT ${q.limit}`,
  );
  return rows.map(toMeasurementRow);
}

/** The newest point of each name, for several runs at once (one index walk per run and name). */
export async function listLatestMeasurements(
  ex: Executor,
  runIds: readonly string[],
): Promise<MeasurementRow[]> {
  if (runIds.length === 0) return [];
  const rows = await queryRows<RawMeasurement>(
    ex,
    sql`
    /* listLatestMeasurements */
    SELECT DISTINCT ON (run_id, name) ${POINT_COLUMNS} FROM measurements
    WHERE ${inArray(measurements.runId, [...runIds])}
    ORDER BY run_id, name, at DESC, id DESC`,
  );
  return rows.map(toMeasurementRow);
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
