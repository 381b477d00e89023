import type { RunRow } from '../db/schema.js';
import type { RunstateEvents } from './topics.js';

/**
 * The one publisher of `runUpdated`. A run's snapshot reaches this instance's subscribers in
 * two ways: `publish` for a run this instance has just written and holds (progress, heartbeat,
 * a blockedReason), and `refresh` for runs changed by a status change (read from the change
 * log) or on another instance: those are read again, and only for runs someone here watches.
 * The event hub orders snapshots by revision, so an older one never replaces a newer one.
 */
export interface RunUpdates {
  publish(run: RunRow): void;
  refresh(runIds: Iterable<string>): Promise<void>;
}

export function createRunUpdates(deps: {
  events: RunstateEvents;
  /** The runs' current rows (the runs domain's store, given by app.ts). */
  readRuns: (ids: readonly string[]) => Promise<RunRow[]>;
}): RunUpdates {
  const { events } = deps;
  return {
    publish(run) {
      events.publish('runUpdated', run.id, run);
    },
    async refresh(runIds) {
      const watched = [...new Set(runIds)].filter((id) => events.hasSubscribers('runUpdated', id));
      if (watched.length === 0) return;
      for (const run of await deps.readRuns(watched)) events.publish('runUpdated', run.id, run);
    },
  };
}
