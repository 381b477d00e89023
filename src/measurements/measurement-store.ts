import { and, asc, desc, eq, inArray, sql, type SQL } from 'drizzle-orm';
import { queryRows, type Executor } from '../db/client.js';
import { measurements, type MeasurementRow } from '../db/schema.js';

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
): Promise<{ rows: MeasurementRow[]; txId: string }> {
  const payload = JSON.stringify(points);
  const rows = await queryRows<RawMeasurement>(
    ex,
    sql`
    /* insertMeasurements */
    INSERT INTO measurements (run_id, name, value, step, at)
    SELECT ${runId}::uuid, p.name, p.value, p.step, coalesce(p.at, now())
    FROM ROWS FROM (
      jsonb_to_recordset(${payload}::jsonb) AS (name text, value float8, step int, at timestamptz)
    ) WITH ORDINALITY AS p(name, value, step, at, n)
    ORDER BY p.n
    RETURNING id, run_id, name, value, step, at, tx_id::text AS tx_id`,
  );
  return { rows: rows.map(toMeasurementRow), txId: rows[0]?.tx_id ?? '0' };
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
