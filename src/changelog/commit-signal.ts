import { randomUUID } from 'node:crypto';
import type { Database } from '../db/client.js';
import type { StatusChangeRow } from '../db/schema.js';
import type { Logger } from '../logger.js';
import type { ChangeLogTail } from './change-log-tail.js';

/** The channel on which instances tell each other that the change log grew. */
export const CHANGE_LOG_CHANNEL = 'runstate_change_log';

/** Least time between two NOTIFYs of one instance: the most it adds to cross-instance delivery. */
const NOTIFY_INTERVAL_MS = 2;

/**
 * Wakes change-log tails after commits: this instance's at once (with the committed rows, which
 * it publishes without reading them back when they continue the log), the others' through a
 * NOTIFY, never one per commit. A NOTIFY rides along with a write that is about to be sent
 * (RunService's one-statement change takes it with `offerNotification`) at most every
 * NOTIFY_INTERVAL_MS, so under load no transaction exists for it alone; a commit that no such
 * write covered gets a NOTIFY of its own, sent after the commit, NOTIFY_INTERVAL_MS later at the
 * most. (A NOTIFY in every write transaction would take PostgreSQL's global notification lock
 * through every commit and serialise the writers; one every few milliseconds does not.) A
 * notification covers what was committed before its statement was sent: listeners read after
 * receiving it. It carries its instance's id, so an instance ignores its own. A lost notification
 * only delays delivery until the tail's idle poll; nothing is lost.
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
  /** A statement that carried an offered notification failed (it was not sent). */
  notificationFailed(): void;
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
  /** Commits acknowledged up to this time are covered by a notification that committed. */
  let coveredThrough = 0;
  /** The latest acknowledgement of a commit (not itself carrying a notification). */
  let lastCommit = 0;
  /** When a notification was last handed out or sent (they are spaced by the interval). */
  let lastOffered = 0;
  let timer: NodeJS.Timeout | null = null;
  let sending = false;
  /** Notifications handed out whose statements have not answered yet. */
  let riding = 0;
  let unlisten: (() => Promise<void>) | null = null;
  const now = () => performance.now();

  function cover(at: number) {
    coveredThrough = Math.max(coveredThrough, at);
  }

  /**
   * A NOTIFY of its own for commits nothing covered: while a write carrying one is on its way it
   * will cover them; else two intervals after the last one (a write may take it before).
   */
  function schedule() {
    if (timer || sending || riding > 0 || lastCommit <= coveredThrough) return;
    const wait = Math.max(0, lastOffered + 2 * NOTIFY_INTERVAL_MS - now());
    timer = setTimeout(() => {
      timer = null;
      void sendAlone();
    }, wait);
  }

  async function sendAlone() {
    if (riding > 0 || lastCommit <= coveredThrough) return;
    sending = true;
    const at = now();
    lastOffered = at;
    try {
      await database.notify(CHANGE_LOG_CHANNEL, instanceId);
      cover(at);
    } catch (error) {
      logger.warn({ err: error }, 'change-log NOTIFY failed; other instances catch up by polling');
      // Not retried at once: the next commit schedules again; the idle poll catches up anyway.
      cover(at);
    } finally {
      sending = false;
      schedule();
    }
  }

  return {
    committed(changes, notifiedAt) {
      tail.committed(changes);
      if (notifiedAt != null) {
        riding--;
        cover(notifiedAt);
      } else lastCommit = now();
      schedule();
    },
    offerNotification() {
      if (database.kind === 'pglite') return null; // one process: nobody else to tell
      const at = now();
      if (at - lastOffered < NOTIFY_INTERVAL_MS) return null;
      lastOffered = at;
      riding++;
      return { payload: instanceId, at };
    },
    notificationSent(at) {
      riding--;
      cover(at);
      schedule();
    },
    notificationFailed() {
      riding--;
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
