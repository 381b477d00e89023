import type { Db } from '../db/client.js';
import type { StatusChangeRow } from '../db/schema.js';
import type { RunStatus } from '../lifecycle/lifecycle.js';
import { listStatusChanges } from '../changelog/change-store.js';
import type { ChangeLogTail } from './change-log-tail.js';
import { GraphQLError } from 'graphql';
import type { TerminalError } from '../live/terminal-error.js';
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
  return replayThenLive(deps.db, filter, afterId, seam, live);
}

/**
 * Every matching change after `afterId` through `seam` (read from the database a page at a
 * time), then the live events, as one iterator: every event of every subscriber passes through
 * it, so it is written out instead of stacking an async generator and wrappers (each layer costs
 * promises per event; issue 18's all-events fan-out). A GraphQLError thrown by the live source
 * becomes a final TerminalError, as filterEvents makes it; `return()` ends the live subscription
 * at once, even while a `next()` waits on it or on a replay page.
 */
function replayThenLive(
  db: Db,
  filter: CheckedStatusChangeFilter,
  afterId: number | null,
  seam: number,
  live: AsyncIterator<StatusChangeRow>,
): AsyncIterableIterator<StatusChangeRow | TerminalError> {
  let replaying = afterId != null && afterId < seam;
  let cursor = afterId ?? 0;
  let page: StatusChangeRow[] = [];
  let index = 0;
  let finished = false;
  const done = (): IteratorResult<StatusChangeRow | TerminalError> => ({
    value: undefined,
    done: true,
  });
  const finish = async () => {
    finished = true;
    await live.return?.();
  };

  async function nextReplayed(): Promise<StatusChangeRow | null> {
    while (!finished) {
      if (index < page.length) {
        const change = page[index++]!;
        cursor = change.id;
        return change;
      }
      // The last page was short (or empty): the replay reached the seam.
      if (index > 0 && page.length < REPLAY_PAGE) return null;
      page = await listStatusChanges(db, {
        ...filter,
        afterId: cursor,
        throughId: seam,
        limit: REPLAY_PAGE,
      });
      index = 0;
      if (page.length === 0) return null;
    }
    return null;
  }

  const onLive = (
    result: IteratorResult<StatusChangeRow>,
  ): IteratorResult<StatusChangeRow | TerminalError> => {
    if (result.done || finished) {
      finished = true;
      return done();
    }
    return result;
  };
  const onLiveError = async (error: unknown): Promise<IteratorResult<TerminalError>> => {
    await finish();
    if (error instanceof GraphQLError) return { value: { terminalError: error }, done: false };
    throw error;
  };
  /** The live events: one promise reaction each (no async function on the per-event path). */
  const nextLive = () =>
    finished ? Promise.resolve(done()) : live.next().then(onLive, onLiveError);

  async function nextReplayedOrLive(): Promise<IteratorResult<StatusChangeRow | TerminalError>> {
    let change: StatusChangeRow | null;
    try {
      change = await nextReplayed();
    } catch (error) {
      await finish();
      throw error;
    }
    if (change) return { value: change, done: false };
    replaying = false;
    return nextLive();
  }

  const iterator: AsyncIterableIterator<StatusChangeRow | TerminalError> = {
    next: () => (replaying ? nextReplayedOrLive() : nextLive()),
    async return() {
      await finish();
      return done();
    },
    async throw(error?: unknown) {
      await finish();
      throw error;
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}
