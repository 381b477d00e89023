import { sql } from 'drizzle-orm';
import { queryRows, type Db } from '../db/client.js';
import type { StatusChangeRow } from '../db/schema.js';
import type { Logger } from '../logger.js';
import { mapStatusChangeRow, type RawStatusChange } from '../runs/run-store.js';

/**
 * One tail of the change log per instance: it reads committed status changes in log order and
 * hands each to `publish` exactly once, however many subscribers there are.
 *
 * Why a reader cannot simply remember the highest id it saw: an id is taken from the sequence at
 * INSERT, not at COMMIT, so id 105 can be visible while id 104 is still in flight; a reader that
 * moved past 105 would miss 104 forever. Gaps therefore stop the tail until they are resolved:
 *
 *   When a read R first sees a gap below the highest id `upTo` it saw, the tail takes a fresh
 *   transaction id X (its own one-statement transaction, after R). The missing ids below
 *   `upTo` are resolved once a later snapshot's xmin (the oldest transaction still running in
 *   the cluster) is above X. Proof: the writer of a missing id g < upTo took g from the
 *   sequence before the writer of upTo took upTo, and that one had committed before R. Every
 *   writer has its xid before it takes an id (see insertStatusChangesSql in run-store.ts), so g's
 *   writer got its xid before R, hence before X: its xid is below X. Once xmin > X, it has
 *   finished: if it committed, g is visible to the next read; if not, g will never exist.
 *
 *   (A snapshot's own xmax does not do: it is one past the newest *completed* xid, and a writer
 *   that took its xid after that one and is still running is above it.)
 *
 * So `position()` only ever grows past ids that are visible or certain never to appear: every
 * committed change with id <= position() has been published, and none will be added below it.
 * Subscribers that resume from a cursor replay (cursor, position()] from the database and take
 * live events above it, which makes the seam exact.
 *
 * Per-run order is version order: a change row is inserted while its run's row lock is held, so
 * a later version of the same run always takes a larger id.
 */
/** How long a poke waits for more commits before the tail reads (the latency it adds). */
const READ_COALESCE_MS = 1;

export interface ChangeLogTail {
  /** Every committed change with id <= position() has been published; none can appear below it. */
  position(): number;
  /** Read now (a change was just committed through this instance, or another one said so). */
  poke(): void;
  /** Find the starting position (the end of the log, once in-flight writers are done) and run. */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Whether the tail loop is running (for readiness). */
  isRunning(): boolean;
}

export interface ChangeLogTailOptions {
  db: Db;
  logger: Logger;
  /** Called for each change in log order, in the same step as position() moves past it. */
  publish: (change: StatusChangeRow) => void;
  /** Awaited after each batch of published changes (follow-up work that needs I/O). */
  afterBatch?: (changes: StatusChangeRow[]) => Promise<void>;
  /** Safety-net poll when nothing pokes the tail (e.g. a missed notification). */
  idlePollMs?: number;
  /** Re-read interval while a gap is waiting for in-flight writers. */
  gapPollMs?: number;
  batchSize?: number;
}

interface TailRow extends Omit<RawStatusChange, 'id'> {
  xmin: string;
  id: string | number | null;
}

export function createChangeLogTail(options: ChangeLogTailOptions): ChangeLogTail {
  const { db, logger, publish } = options;
  const idlePollMs = options.idlePollMs ?? 1000;
  const gapPollMs = options.gapPollMs ?? 20;
  const batchSize = options.batchSize ?? 1000;

  let position = 0;
  /** Missing ids <= resolvedUpTo will never appear. */
  let resolvedUpTo = 0;
  let gap: { upTo: number; horizon: bigint } | null = null;
  let running = false;
  let loop: Promise<void> | null = null;
  let wake: (() => void) | null = null;
  let poked = false;
  let coalescing: NodeJS.Timeout | null = null;

  /** A transaction id assigned now: above every xid assigned before this call. */
  async function takeFreshXid(): Promise<bigint> {
    const [row] = await queryRows<{ xid: string }>(
      db,
      sql`/* tailFreshXid */ SELECT pg_current_xact_id()::text AS xid`,
    );
    return BigInt(row!.xid);
  }

  /** One read: publish the contiguous (or resolved) prefix above position. */
  async function readOnce(): Promise<'more' | 'idle' | 'gap'> {
    const rows = await queryRows<TailRow>(
      db,
      sql`
      /* tailChangeLog */
      SELECT s.xmin::text AS xmin, c.*
      FROM (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin) AS s
      LEFT JOIN LATERAL (
        SELECT id, run_id, project, from_status, to_status, version, reason, message, at, forced, actor
        FROM status_changes WHERE id > ${position} ORDER BY id LIMIT ${batchSize}
      ) AS c ON true`,
    );
    const snapshot = rows[0]!;
    const xmin = BigInt(snapshot.xmin);
    if (gap && xmin > gap.horizon) {
      resolvedUpTo = Math.max(resolvedUpTo, gap.upTo);
      gap = null;
    }
    const changes = rows.flatMap((r) =>
      r.id == null ? [] : [mapStatusChangeRow({ ...r, id: r.id })],
    );
    const published: StatusChangeRow[] = [];
    let state: 'more' | 'idle' | 'gap' = changes.length === batchSize ? 'more' : 'idle';
    for (const change of changes) {
      if (change.id !== position + 1 && change.id - 1 > resolvedUpTo) {
        gap ??= { upTo: changes.at(-1)!.id, horizon: await takeFreshXid() };
        state = 'gap';
        break;
      }
      position = change.id;
      publish(change);
      published.push(change);
    }
    if (published.length > 0 && options.afterBatch) await options.afterBatch(published);
    return state;
  }

  function sleep(ms: number): Promise<void> {
    if (poked) {
      poked = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wake = null;
        poked = false;
        resolve();
      }
      wake = done;
    });
  }

  async function run(): Promise<void> {
    let failures = 0;
    while (running) {
      let state: 'more' | 'idle' | 'gap';
      try {
        state = await readOnce();
        failures = 0;
      } catch (error) {
        // The database went away (restart, network): keep the position and try again.
        failures++;
        if (failures === 1 || failures % 50 === 0)
          logger.warn({ err: error }, 'change-log tail read failed; retrying');
        state = 'idle';
        await sleep(Math.min(2000, 50 * failures));
        continue;
      }
      if (state === 'more') continue;
      await sleep(state === 'gap' ? gapPollMs : idlePollMs);
    }
  }

  /**
   * Start at the end of the log, after every writer that was in flight there has finished (the
   * same rule as for gaps: a fresh xid taken after reading the end, then xmin above it).
   */
  async function findStart(): Promise<void> {
    const [first] = await queryRows<{ max: string | number }>(
      db,
      sql`/* tailStart */ SELECT coalesce(max(id), 0) AS max FROM status_changes`,
    );
    const horizon = await takeFreshXid();
    const started = Date.now();
    let warned = false;
    for (;;) {
      const [now] = await queryRows<{ xmin: string }>(
        db,
        sql`/* tailStartWait */ SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin`,
      );
      if (BigInt(now!.xmin) > horizon) break;
      if (!warned && Date.now() - started > 5000) {
        warned = true;
        logger.warn(
          'change-log tail waits for a long-running transaction (in any database of this server) before it can start',
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    position = Number(first!.max);
    resolvedUpTo = position;
  }

  return {
    position: () => position,
    poke() {
      if (!wake) {
        poked = true;
        return;
      }
      // A commit rarely comes alone: read a moment later, once, for all of them.
      if (!coalescing) {
        coalescing = setTimeout(() => {
          coalescing = null;
          wake?.();
        }, READ_COALESCE_MS);
      }
    },
    async start() {
      if (running) return;
      await findStart();
      running = true;
      loop = run();
    },
    async stop() {
      running = false;
      if (coalescing) clearTimeout(coalescing);
      coalescing = null;
      wake?.();
      await loop;
      loop = null;
    },
    isRunning: () => running,
  };
}
