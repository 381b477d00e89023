import { canSeeProject, type Principal } from '../auth/principal.js';
import type { Db, Executor } from '../db/client.js';
import type { MeasurementRow } from '../db/schema.js';
import { BadUserInputError, getPgErrorCode, NotFoundError } from '../errors.js';
import type { RunstateEvents } from '../live/topics.js';
import type { RunUpdates } from '../live/run-updates.js';
import { getRunById } from '../runs/run-store.js';
import { decodeCursor, encodeCursor, toConnection } from '../pagination.js';
import {
  checkDate,
  checkFirst,
  checkJson,
  checkListLength,
  checkString,
  checkStringList,
  checkUuid,
  LIMITS,
} from '../validation.js';
import * as store from './measurement-store.js';

/** One point: exactly one of `value` (a number) and `data` (any other JSON but null). */
export interface MeasurementInput {
  name: string;
  value?: number | null;
  data?: unknown;
  step?: number | null;
  at?: Date | null;
}

/** The most a point's `data` may hold, as JSON text (documented in schema.graphql). */
export const MEASUREMENT_DATA_BYTES = 16 * 1024;

export interface MeasurementService {
  /** Validate and write a batch in one INSERT; answers how many points were written. */
  /**
   * With `idempotencyKey`, sending the same key for the same run again records nothing and
   * answers the first request's count (a worker retrying after a lost answer).
   */
  recordMeasurements(
    runId: string,
    points: readonly MeasurementInput[],
    actor: Pick<Principal, 'projects'>,
    idempotencyKey?: string | null,
  ): Promise<number>;
}

const FOREIGN_KEY_VIOLATION = '23503';

export function createMeasurementService(deps: {
  db: Db;
  events: RunstateEvents;
  /** Passes recorded points on to the other instances (live/run-signal.ts). */
  runSignal: {
    measurementsRecorded(runId: string, firstId: number, lastId: number, txId: string): void;
  };
  /** The one publisher of runUpdated (live/run-updates.ts). */
  runUpdates: Pick<RunUpdates, 'refresh'>;
}): MeasurementService {
  const { db, events, runSignal, runUpdates } = deps;
  return {
    async recordMeasurements(runIdInput, points, actor, idempotencyKeyInput) {
      const runId = checkUuid('input.runId', runIdInput);
      const idempotencyKey =
        idempotencyKeyInput == null
          ? null
          : checkString('input.idempotencyKey', idempotencyKeyInput, {
              min: 1,
              max: LIMITS.idempotencyKeyLength,
            });
      checkListLength('input.measurements', points, LIMITS.measurementsPerBatch, 1);
      const rows = points.map((p, i) => checkPoint(`input.measurements[${i}]`, p));
      if (actor.projects != null) {
        // A run outside the token's projects does not exist for it (a run's project is fixed).
        const run = await getRunById(db, runId);
        if (!run || !canSeeProject(actor, run.project)) throw new NotFoundError('run', runId);
      }
      // The points are read back only for subscribers here; other instances read them by id
      // range (run-signal.ts), and the answer is only their number.
      let written: store.WrittenMeasurements;
      const insert = (ex: Executor) =>
        store.insertMeasurements(
          ex,
          runId,
          rows,
          events.hasSubscribers('measurementRecorded', runId),
        );
      try {
        if (idempotencyKey == null) written = await insert(db);
        else {
          const outcome = await db.transaction(async (tx) => {
            const earlier = await store.claimMeasurementKey(tx, runId, idempotencyKey, rows.length);
            return earlier == null ? await insert(tx) : earlier;
          });
          if (typeof outcome === 'number') return outcome; // a replay: nothing new
          written = outcome;
        }
      } catch (error) {
        if (getPgErrorCode(error) === FOREIGN_KEY_VIOLATION) throw new NotFoundError('run', runId);
        throw error;
      }
      const { firstId, lastId, txId } = written;
      // A subscriber that arrived while the INSERT ran gets the points too.
      const inserted =
        written.rows ??
        (events.hasSubscribers('measurementRecorded', runId)
          ? await store.listWrittenMeasurements(db, runId, firstId, lastId, txId)
          : []);
      for (const row of inserted) events.publish('measurementRecorded', runId, row);
      runSignal.measurementsRecorded(runId, firstId, lastId, txId);
      await runUpdates.refresh([runId]);
      return written.count;
    },
  };
}

/**
 * One point as written: a finite `value`, or `data` that is JSON but no bare number (a number
 * is a `value`, so each series' numbers are charted and compared alike), within the size and
 * depth limits. `data: null` counts as absent: GraphQL cannot tell the two apart.
 */
function checkPoint(field: string, p: MeasurementInput): store.NewMeasurement {
  let value: number | null = null;
  let data: unknown;
  if (p.data == null) {
    if (p.value == null)
      throw new BadUserInputError(`${field}.value`, 'must be given when data is not');
    if (!Number.isFinite(p.value))
      throw new BadUserInputError(`${field}.value`, 'must be a finite number');
    value = p.value;
  } else {
    if (p.value != null) {
      throw new BadUserInputError(
        `${field}.data`,
        'must not be given with value: a point is either a number (value) or other JSON (data)',
      );
    }
    if (typeof p.data === 'number')
      throw new BadUserInputError(`${field}.data`, 'must not be a number: send numbers as value');
    data = checkJson(`${field}.data`, p.data, { maxBytes: MEASUREMENT_DATA_BYTES });
  }
  if (p.at != null) checkDate(`${field}.at`, p.at);
  return {
    name: checkString(`${field}.name`, p.name, { min: 1, max: LIMITS.measurementNameLength }),
    value,
    // Absent for a number, so a batch of numbers is sent as before.
    ...(data === undefined ? {} : { data }),
    step: p.step ?? null,
    at: p.at ?? null,
  };
}

const MEASUREMENT_CURSOR = 'm';

/** A run's points, oldest first, as a Relay connection. */
export async function listMeasurements(
  ex: Executor,
  runId: string,
  args: { names?: readonly string[] | null; first?: number | null; after?: string | null },
) {
  const first = checkFirst('first', args.first, 100);
  const kind = `${MEASUREMENT_CURSOR}:${runId}`;
  let after: store.MeasurementQuery['after'] = null;
  if (args.after != null) {
    const [at, id] = decodeCursor('after', args.after, kind, ['time', 'id']);
    after = { at: new Date(Number(at)), id: Number(id) };
  }
  const names = checkStringList(
    'names',
    args.names,
    { min: 1, max: LIMITS.measurementNameLength },
    LIMITS.filterValues,
  );
  const rows = await store.listMeasurements(ex, { runId, names, after, limit: first + 1 });
  return toConnection(rows, first, (m) => encodeCursor(kind, [m.at.getTime(), m.id]));
}

/** Each run's newest point of every series, in the order asked (for a batching loader). */
export async function getLatestMeasurements(
  ex: Executor,
  runIds: readonly string[],
): Promise<MeasurementRow[][]> {
  const rows = await store.listLatestMeasurements(ex, runIds);
  const byRun = new Map<string, MeasurementRow[]>();
  for (const row of rows) {
    const list = byRun.get(row.runId);
    if (list) list.push(row);
    else byRun.set(row.runId, [row]);
  }
  return runIds.map((id) => byRun.get(id) ?? []);
}

/** The points one transaction wrote for a run, ids first..last (for other instances' readers). */
export function getWrittenMeasurements(
  ex: Executor,
  runId: string,
  firstId: number,
  lastId: number,
  txId: string,
): Promise<MeasurementRow[]> {
  return store.listWrittenMeasurements(ex, runId, firstId, lastId, txId);
}
