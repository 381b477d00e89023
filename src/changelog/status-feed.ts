import type { Db } from '../db/client.js';
import type { StatusChangeRow } from '../db/schema.js';
import type { RunStatus } from '../lifecycle/lifecycle.js';
import { listStatusChanges } from '../changelog/change-store.js';
import type { ChangeLogTail } from './change-log-tail.js';
import { filterEvents, interruptible, type TerminalError } from '../live/terminal-error.js';
import { ALL, type RunstateEvents } from '../live/topics.js';

export interface CheckedStatusChangeFilter {
  runIds: readonly string[] | null;
  projects: readonly string[] | null;
  statuses: readonly RunStatus[] | null;
  /** Changes of this run's children. */
  parentId?: string | null;
}

export function matchesStatusChangeFilter(
  filter: CheckedStatusChangeFilter,
  change: StatusChangeRow,
): boolean {
  return (
    (filter.runIds == null || filter.runIds.includes(change.runId)) &&
    (filter.projects == null || filter.projects.includes(change.project)) &&
    (filter.statuses == null || filter.statuses.includes(change.toStatus)) &&
    (filter.parentId == null || filter.parentId === change.parentId)
  );
}

const REPLAY_PAGE = 500;

/**
 * Matching committed status changes, live; with `afterId`, first every matching change after it.
 *
 * The seam is exact: the live subscription is registered and the tail's position read in the
 * same synchronous step, so every change with id <= seam was published before (replay it from
 * the database) and every change with id > seam is published after (it arrives live, buffered
 * while the replay runs). A cursor ahead of this instance's tail (taken on a faster instance)
 * replays nothing and skips live events up to it.
 */
export function streamStatusChanges(
  deps: { db: Db; events: RunstateEvents; tail: ChangeLogTail },
  filter: CheckedStatusChangeFilter,
  afterId: number | null,
): AsyncIterableIterator<StatusChangeRow | TerminalError> {
  // Registered, and the seam read, in one synchronous step; see above. The filter runs at
  // publish time, so only matching events count against this subscriber's buffer.
  let floor = afterId ?? 0;
  // A subscriber to some runs listens on those runs' keys only: publishing a change then costs
  // the subscribers of its run, not a filter call for every subscriber of every run.
  const keys = filter.runIds != null && filter.runIds.length > 0 ? filter.runIds : ALL;
  const live = deps.events.subscribe('statusChanged', keys, {
    filter: (event) => event.id > floor && matchesStatusChangeFilter(filter, event),
  });
  const seam = deps.tail.position();
  floor = Math.max(floor, seam);
  const source = filterEvents(live);
  return interruptible(replayThenLive(deps.db, filter, afterId, seam, source), source);
}

async function* replayThenLive(
  db: Db,
  filter: CheckedStatusChangeFilter,
  afterId: number | null,
  seam: number,
  source: AsyncIterableIterator<StatusChangeRow | TerminalError>,
): AsyncGenerator<StatusChangeRow | TerminalError> {
  try {
    if (afterId != null && afterId < seam) {
      let cursor = afterId;
      for (;;) {
        const page = await listStatusChanges(db, {
          ...filter,
          afterId: cursor,
          throughId: seam,
          limit: REPLAY_PAGE,
        });
        for (const change of page) {
          yield change;
          cursor = change.id;
        }
        if (page.length < REPLAY_PAGE) break;
      }
    }
    yield* source;
  } finally {
    await source.return?.();
  }
}
