import { randomUUID } from 'node:crypto';
import type { Database } from '../db/client.js';
import type { StatusChangeRow } from '../db/schema.js';
import type { Logger } from '../logger.js';
import type { ChangeLogTail } from './change-log-tail.js';

/** The channel on which instances tell each other that the change log grew. */
export const CHANGE_LOG_CHANNEL = 'runstate_change_log';

/**
 * Least time between two notifications handed to writes: as long as a commit waits for one
 * (UNCOVERED_MS), so under load other instances hear of a commit no later than they would when
 * idle. Every notification costs PostgreSQL a signal to each listening session (this instance's
 * own listener among them) and each listener a read; at 2 ms, half of all changes carried one at
 * 8 clients, and an interleaved A/B measured 919 -> 1,065 and 1,550 -> 1,673 changes/s for 10 ms.
 */
export const NOTIFY_INTERVAL_MS = 8;
/**
 * How long a commit waits for a write to carry a notification before one is sent on its own:
 * the most this adds to delivery on other instances.
 */
const UNCOVERED_MS = 8;
/**
 * How long a write carrying a notification, sent after an uncovered commit, holds back that
 * commit's NOTIFY of its own: under load its commit covers it (a write's answer takes longer
 * than UNCOVERED_MS), and one that hangs or fails delays the NOTIFY at most this long.
 */
const IN_FLIGHT_MS = 100;

/**
 * Wakes change-log tails after commits: this instance's with the committed rows (which it
 * publishes without reading them back when they continue the log), the others' through a
 * NOTIFY, never one per commit. A NOTIFY rides along with a write that is about to be sent
 * (RunService's one-statement change takes it with `offerNotification`) at most every
 * NOTIFY_INTERVAL_MS, so under load no transaction exists for it alone; a commit that no such
 * write covered within UNCOVERED_MS, and that no write carrying one is on its way to cover, gets
 * a NOTIFY of its own. (A NOTIFY in every write transaction would take PostgreSQL's global
 * notification lock through every commit and serialise the writers; one every few milliseconds
 * does not.) A notification covers what was committed before its statement was sent: listeners
 * read after receiving it. It carries its instance's id, so an instance ignores its own. A lost
 * notification only delays delivery until the tail's idle poll; nothing is lost.
 */
export interface CommitSignal {
  /**
   * Call after a transaction that appended these changes to the log committed. `notifiedAt`:
   * the transaction carried the notification offerNotification() handed out then.
   */
  committed(changes: readonly StatusChangeRow[], notifiedAt?: number | null): void;
  /**
   * The payload of a NOTIFY on CHANGE_LOG_CHANNEL for a write about to be sent, when one is
   * due (else null), and the time to pass back to committed() (or to notificationSent() when
   * the statement committed nothing of the log).
   */
  offerNotification(): { payload: string; at: number } | null;
  /** A statement that carried an offered notification committed without log rows. */
  notificationSent(at: number): void;
  /** A statement that carried the notification offered at `at` failed (it was not sent). */
  notificationFailed(at: number): void;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function createCommitSignal(deps: {
  database: Database;
  tail: ChangeLogTail;
  logger: Logger;
}): CommitSignal {
  const { database, tail, logger } = deps;
  const instanceId = randomUUID();
  /** Acknowledgement times of commits no notification covered yet, oldest first. */
  const uncovered: number[] = [];
  /** When the notifications handed to writes still on their way were handed out. */
  const inFlight = new Set<number>();
  /** When a notification was last handed out or sent (they are spaced by the interval). */
  let lastOffered = 0;
  let timer: NodeJS.Timeout | null = null;
  let sending = false;
  let unlisten: (() => Promise<void>) | null = null;
  const now = () => performance.now();

  /** A notification sent at `at` committed: it covers every commit acknowledged before. */
  function cover(at: number) {
    let n = 0;
    while (n < uncovered.length && uncovered[n]! < at) n++;
    uncovered.splice(0, n);
  }

  /**
   * When the oldest uncovered commit gets a NOTIFY of its own: UNCOVERED_MS after it, or later
   * while a write carrying one, sent after it, is on its way (for at most IN_FLIGHT_MS).
   */
  function dueAt(): number {
    const oldest = uncovered[0]!;
    let due = oldest + UNCOVERED_MS;
    for (const at of inFlight) if (at > oldest) due = Math.max(due, at + IN_FLIGHT_MS);
    return due;
  }

  /**
   * A NOTIFY of its own once a commit waited that long (under load a write carries one long
   * before; a write that hangs or fails covers nothing, and this still comes).
   */
  function schedule() {
    if (timer || sending || uncovered.length === 0) return;
    timer = setTimeout(
      () => {
        timer = null;
        if (uncovered.length > 0 && dueAt() <= now()) void sendAlone();
        else schedule();
      },
      Math.max(0, dueAt() - now()),
    );
  }

  /** The write that carried the notification offered at `at` is answered. */
  function settled(at: number) {
    inFlight.delete(at);
    // A timer set while that write was on its way waits for it: set it again from what is left.
    if (timer) clearTimeout(timer);
    timer = null;
  }

  async function sendAlone() {
    sending = true;
    const at = now();
    lastOffered = at;
    try {
      await database.notify(CHANGE_LOG_CHANNEL, instanceId);
    } catch (error) {
      // Not retried: the other instances' idle poll catches up.
      logger.warn({ err: error }, 'change-log NOTIFY failed; other instances catch up by polling');
    } finally {
      cover(at);
      sending = false;
      schedule();
    }
  }

  return {
    committed(changes, notifiedAt) {
      tail.committed(changes);
      if (notifiedAt != null) {
        settled(notifiedAt);
        cover(notifiedAt);
      } else if (database.kind !== 'pglite') uncovered.push(now());
      schedule();
    },
    offerNotification() {
      if (database.kind === 'pglite') return null; // one process: nobody else to tell
      const at = now();
      if (at - lastOffered < NOTIFY_INTERVAL_MS) return null;
      lastOffered = at;
      inFlight.add(at);
      return { payload: instanceId, at };
    },
    notificationSent(at) {
      settled(at);
      cover(at);
      schedule();
    },
    notificationFailed(at) {
      settled(at);
      schedule();
    },
    async start() {
      // On every (re)connect of the listener, read: whatever was notified meanwhile is caught up.
      unlisten = await database.listen(
        CHANGE_LOG_CHANNEL,
        (payload) => {
          if (payload !== instanceId) tail.poke();
        },
        () => tail.poke(),
      );
    },
    async stop() {
      if (timer) clearTimeout(timer);
      timer = null;
      await unlisten?.();
      unlisten = null;
    },
  };
}
