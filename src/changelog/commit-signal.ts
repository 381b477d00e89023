import { randomUUID } from 'node:crypto';
import type { Database } from '../db/client.js';
import type { Logger } from '../logger.js';
import type { ChangeLogTail } from './change-log-tail.js';

/** The channel on which instances tell each other that the change log grew. */
export const CHANGE_LOG_CHANNEL = 'runstate_change_log';

/** Least time between two NOTIFYs of one instance: the most it adds to cross-instance delivery. */
const NOTIFY_INTERVAL_MS = 2;

/**
 * Wakes change-log tails after commits: this instance's at once, the others' through one NOTIFY
 * sent after the commit, never inside the write transaction (a NOTIFY there takes a global lock
 * through the commit and serialises every writer). NOTIFYs are coalesced: while one is in flight,
 * further commits only mark that another is due, so there is at most one at a time per instance,
 * and they are spaced at least NOTIFY_INTERVAL_MS apart (under load, one NOTIFY covers many
 * commits). A NOTIFY carries its instance's id, so an instance ignores its own (its tail was
 * poked already). A lost notification only delays delivery until the tail's idle poll; nothing
 * is lost.
 */
export interface CommitSignal {
  /** Call after a transaction that appended to the change log committed. */
  committed(): void;
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
  let sending = false;
  let lastSent = 0;
  let due = false;
  let unlisten: (() => Promise<void>) | null = null;

  async function sendNotifications() {
    sending = true;
    while (due) {
      const wait = lastSent + NOTIFY_INTERVAL_MS - Date.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      due = false;
      lastSent = Date.now();
      try {
        await database.notify(CHANGE_LOG_CHANNEL, instanceId);
      } catch (error) {
        logger.warn(
          { err: error },
          'change-log NOTIFY failed; other instances catch up by polling',
        );
      }
    }
    sending = false;
  }

  return {
    committed() {
      tail.poke();
      due = true;
      if (!sending) void sendNotifications();
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
      await unlisten?.();
      unlisten = null;
    },
  };
}
