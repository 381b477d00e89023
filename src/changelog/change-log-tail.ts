import type { Db } from '../db/client.js';
import type { StatusChangeRow } from '../db/schema.js';
import type { Logger } from '../logger.js';
import { withTimeout } from '../ops/timeout.js';
import {
  findLogEnd,
  listChangeLogWriters,
  listChangesAfter,
  type ChangeLogWriter,
} from './change-store.js';

/**
 * One tail of the change log per instance: it reads committed status changes in log order and
 * hands each to `publish` exactly once, however many subscribers there are.
 *
 * Why a reader cannot simply remember the highest id it saw: an id is taken from the sequence at
 * INSERT, not at COMMIT, so id 105 can be visible while id 104 is still in flight; a reader that
 * moved past 105 would miss 104 forever. Gaps therefore stop the tail until they are resolved.
 *
 * The horizon: which transactions a gap waits for. Every id is taken by an INSERT into
 * status_changes (the column's default), and an INSERT holds a RowExclusiveLock on the table
 * from before it takes its id (locks are taken when the statement is parsed, planned or
 * revalidated, before it runs) until its transaction ends. PostgreSQL makes a commit visible
 * before it releases the transaction's locks. So:
 *
 *   When a read R first sees a gap below the highest id `upTo` it saw, the tail lists W, the
 *   transactions that hold a RowExclusiveLock on status_changes in this database (pg_locks, by
 *   virtual transaction id, which is never reused for another transaction; a statement after
 *   R). The missing ids below `upTo` are resolved once none of W holds that lock any more, as a
 *   later statement C finds. Proof: the writer of a missing id g < upTo took g before the
 *   writer of upTo took upTo, and that one had committed before R; so g's writer held the lock
 *   before R. When W was listed it had either finished (then g is visible to every later
 *   snapshot, or will never exist) or it was in W. Once C finds W gone, every read after C sees
 *   g if it was committed: the tail reads after C.
 *
 * Only writers of status changes are waited for: a long transaction in another database, an
 * idle session, a backup (which holds only an AccessShareLock) or a reader never stalls
 * delivery. A writer that holds its transaction open does, for as long as it does; status()
 * says since when and which backend pid, for /ready, the metrics and a log line. This replaces
 * the first version's rule (wait until the cluster-wide xmin passed a fresh xid), under which any
 * long transaction anywhere on the server stalled every instance.
 *
 * So `position()` only ever grows past ids that are visible or certain never to appear: every
 * committed change with id <= position() has been published, and none will be added below it.
 * Subscribers that resume from a cursor replay (cursor, position()] from the database and take
 * live events above it, which makes the seam exact.
 *
 * Per-run order is version order: a change row is inserted while its run's row lock is held, so
 * a later version of the same run always takes a larger id.
 */
/** Least time between two checks of a gap's writers (pg_locks). */
const CHECK_INTERVAL_MS = 5;

/** How long a poke waits for more commits before the tail reads (the latency it adds). */
const READ_COALESCE_MS = 1;
/**
 * A read that has not answered by then is abandoned and retried (a fresh query). After the
 * database killed connections, postgres.js 3.4.9 left a query's promise unsettled for ever though
 * the pool went on working: with several hosts in the URL, the first query of a reconnected
 * connection when its backend was killed (patched, see patches/ and db-client.test.ts). Should
 * another such path exist, a stalled tail would stop live delivery without a word: this bounds it.
 */
const READ_TIMEOUT_MS = 15_000;
/**
 * How long this instance's own commits that do not continue the log wait for the ones before
 * them before the log is read: under concurrent writes, commits end in another order than they
 * took their ids, and the missing one is nearly always this instance's, a moment behind.
 */
const LOCAL_GAP_GRACE_MS = 20;

export interface ChangeLogTail {
  /** Every committed change with id <= position() has been published; none can appear below it. */
  position(): number;
  /** Read now (another instance said the log grew, or a read is due for another reason). */
  poke(): void;
  /**
   * This instance committed these changes (the rows as written). Those that continue the log
   * from position() without a gap are published without a read; the rest wait for one.
   */
  committed(changes: readonly StatusChangeRow[]): void;
  /** Find the starting position (the end of the log, once in-flight writers are done) and run. */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Whether the tail loop is running (for readiness). */
  isRunning(): boolean;
  /** What delivery waits for, if anything (for /ready, the metrics and the logs). */
  status(): TailStatus;
}

/**
 * `waiting`: the tail has waited since `since` (epoch ms) for the transactions of `pids`, which
 * wrote status changes and have not ended; `starting` is the same before the first read.
 */
export type TailStatus =
  { state: 'ok' | 'stopped' } | { state: 'waiting' | 'starting'; since: number; pids: number[] };

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
  /** After how long a wait for writers is logged as a warning (default 5,000 ms). */
  warnAfterMs?: number;
}

interface Gap {
  upTo: number;
  /** When the writers were last listed or checked. */
  checkedAt: number;
  writers: ChangeLogWriter[];
  since: number;
  warned: boolean;
}

export function createChangeLogTail(options: ChangeLogTailOptions): ChangeLogTail {
  const { db, logger, publish } = options;
  const idlePollMs = options.idlePollMs ?? 1000;
  const gapPollMs = options.gapPollMs ?? 20;
  const batchSize = options.batchSize ?? 1000;
  const warnAfterMs = options.warnAfterMs ?? 5000;

  let position = 0;
  /** Missing ids <= resolvedUpTo will never appear. */
  let resolvedUpTo = 0;
  let gap: Gap | null = null;
  let starting: Gap | null = null;
  let running = false;
  let loop: Promise<void> | null = null;
  let wake: (() => void) | null = null;
  let poked = false;
  let coalescing: NodeJS.Timeout | null = null;
  /** Whether the next turn must read the log (a poke, a gap, the idle poll, a start). */
  let readDue = true;
  let localWake: NodeJS.Immediate | null = null;
  /** Changes this instance committed, by id, not published yet. */
  const local = new Map<number, StatusChangeRow>();

  /**
   * Publish this instance's own commits that continue the log from position: each was committed
   * (its transaction answered) and has the next id, so nothing can still appear below it. One
   * that does not continue the log (another instance's change, or an id a rolled-back
   * transaction took, lies between) needs a read, and the gap rule above.
   */
  async function publishLocal(): Promise<number> {
    const published: StatusChangeRow[] = [];
    for (let next = local.get(position + 1); next; next = local.get(position + 1)) {
      local.delete(next.id);
      position = next.id;
      if (gap && position >= gap.upTo) gap = null;
      publish(next);
      published.push(next);
    }
    forgetPublished();
    // Under the read's timeout too: a query that never settles must not stop the tail.
    if (published.length > 0 && options.afterBatch) {
      await withTimeout(
        options.afterBatch(published),
        READ_TIMEOUT_MS,
        'the follow-up of published changes',
      ).catch((error: unknown) =>
        logger.warn({ err: error }, 'change-log tail: follow-up of published changes failed'),
      );
    }
    return published.length;
  }

  /** Since when local commits have waited for an id before them (null: none waits). */
  let localGapSince: number | null = null;

  function forgetPublished(): void {
    for (const id of local.keys()) if (id <= position) local.delete(id);
  }

  /** Whether the writers a wait began with have all ended; logs a wait that lasts. */
  async function writersEnded(wait: Gap, what: string): Promise<boolean> {
    wait.writers = await listChangeLogWriters(db, wait.writers);
    wait.checkedAt = Date.now();
    if (wait.writers.length === 0) {
      if (wait.warned)
        logger.info({ waitedMs: Date.now() - wait.since }, `change-log tail: ${what} ended`);
      return true;
    }
    if (!wait.warned && Date.now() - wait.since > warnAfterMs) {
      wait.warned = true;
      logger.warn(
        { pids: pidsOf(wait), waitingMs: Date.now() - wait.since },
        `change-log tail: live delivery waits for ${what}, transactions that wrote status ` +
          'changes and are still open (end them, or find out why they hang: pg_stat_activity)',
      );
    }
    return false;
  }

  /** Bumped when a read is abandoned: a late answer to it must change nothing. */
  let readGeneration = 0;

  /** readOnce, abandoned (and the tail's state left as it was) if it hangs. */
  async function readWithin(timeoutMs: number): Promise<'more' | 'idle' | 'gap'> {
    const generation = ++readGeneration;
    return withTimeout(readOnce(generation), timeoutMs, 'a change-log read', () => {
      readGeneration++;
    });
  }

  /** Throws when the read this is part of was abandoned (readWithin). */
  function stillCurrent(generation: number): void {
    if (generation !== readGeneration)
      throw new Error('an abandoned change-log read answered late');
  }

  /** One read: publish the contiguous (or resolved) prefix above position. */
  async function readOnce(generation: number): Promise<'more' | 'idle' | 'gap'> {
    // Checked before the read, so the read's snapshot is later than the check (see above); at
    // most every CHECK_INTERVAL_MS, as pg_locks is not free and most gaps fill by a commit.
    if (
      gap &&
      Date.now() - gap.checkedAt >= CHECK_INTERVAL_MS &&
      (await writersEnded(gap, 'a gap in the log'))
    ) {
      stillCurrent(generation);
      resolvedUpTo = Math.max(resolvedUpTo, gap.upTo);
      gap = null;
    }
    const changes = await listChangesAfter(db, position, batchSize);
    stillCurrent(generation);
    const published: StatusChangeRow[] = [];
    let state: 'more' | 'idle' | 'gap' = changes.length === batchSize ? 'more' : 'idle';
    for (const change of changes) {
      if (change.id !== position + 1 && change.id - 1 > resolvedUpTo) {
        state = 'gap';
        if (!gap) {
          const upTo = changes.at(-1)!.id;
          const writers = await listChangeLogWriters(db);
          stillCurrent(generation);
          if (writers.length === 0) {
            // Every writer that could fill it had ended: read again, after this statement.
            resolvedUpTo = Math.max(resolvedUpTo, upTo);
            state = 'more';
          } else gap = waitFor(upTo, writers);
        }
        break;
      }
      position = change.id;
      publish(change);
      published.push(change);
    }
    // Filled by the commits it waited for: nothing below upTo is missing any more.
    if (gap && position >= gap.upTo) gap = null;
    forgetPublished();
    if (published.length > 0 && options.afterBatch) await options.afterBatch(published);
    return state;
  }

  /** Wait for a poke, a local commit or `ms` (after which a read is due: the safety net). */
  function sleep(ms: number): Promise<void> {
    if (poked) {
      poked = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        readDue = true;
        done();
      }, ms);
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
        // The grace counts from the last time the log moved on: a steady stream of commits that
        // end a little out of order never needs a read.
        if ((await publishLocal()) > 0 || local.size === 0) localGapSince = null;
        if (local.size > 0) localGapSince ??= Date.now();
        if (!readDue) {
          // Nothing asked for a read: wait for the next local commit, a poke, or (when local
          // commits wait for an earlier id) the grace to run out, which makes a read due.
          const grace = localGapSince === null ? null : localGapSince + LOCAL_GAP_GRACE_MS;
          await sleep(grace === null ? idlePollMs : Math.max(0, grace - Date.now()));
          continue;
        }
        readDue = false;
        if (localGapSince !== null) localGapSince = Date.now();
        state = await readWithin(READ_TIMEOUT_MS);
        if (failures > 0) logger.info({ failures }, 'change-log tail reads again');
        failures = 0;
      } catch (error) {
        // The database went away (restart, network): keep the position and try again.
        failures++;
        readDue = true;
        if (failures === 1 || failures % 50 === 0)
          logger.warn({ err: error }, 'change-log tail read failed; retrying');
        await sleep(Math.min(1000, 50 * failures));
        continue;
      }
      if (state !== 'idle') readDue = true;
      if (state === 'more') continue;
      await sleep(state === 'gap' ? gapPollMs : idlePollMs);
    }
  }

  /**
   * Start at the end of the log, once every writer that was in flight there has ended (the rule
   * for gaps above: the writers listed after reading the end, then a check that they are gone).
   */
  async function findStart(): Promise<void> {
    const end = await findLogEnd(db);
    starting = waitFor(end, await listChangeLogWriters(db));
    try {
      while (!(await writersEnded(starting, 'the start of the tail'))) {
        if (stopRequested) throw new Error('the change-log tail was stopped while starting');
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      position = starting.upTo;
      resolvedUpTo = position;
    } finally {
      starting = null;
    }
  }

  let stopRequested = false;

  return {
    position: () => position,
    poke() {
      readDue = true;
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
    committed(changes) {
      for (const change of changes) if (change.id > position) local.set(change.id, change);
      // After this turn of the event loop: the committer's answer goes out first, and commits
      // of the same turn are published together.
      localWake ??= setImmediate(() => {
        localWake = null;
        if (wake) wake();
        else poked = true;
      });
    },
    async start() {
      if (running) return;
      stopRequested = false;
      readDue = true;
      local.clear();
      await findStart();
      if (stopRequested) return; // stopped while it started
      running = true;
      loop = run();
    },
    async stop() {
      stopRequested = true;
      running = false;
      if (coalescing) clearTimeout(coalescing);
      coalescing = null;
      if (localWake) clearImmediate(localWake);
      localWake = null;
      wake?.();
      await loop;
      loop = null;
    },
    isRunning: () => running,
    status() {
      if (starting) return { state: 'starting', since: starting.since, pids: pidsOf(starting) };
      if (!running) return { state: 'stopped' };
      if (gap) return { state: 'waiting', since: gap.since, pids: pidsOf(gap) };
      return { state: 'ok' };
    },
  };
}

/** A wait, begun now, for `writers` to end before ids up to `upTo` count as resolved. */
function waitFor(upTo: number, writers: ChangeLogWriter[]): Gap {
  const now = Date.now();
  return { upTo, writers, since: now, checkedAt: now, warned: false };
}

function pidsOf(wait: Gap): number[] {
  return wait.writers.flatMap((w) => (w.pid == null ? [] : [w.pid]));
}
