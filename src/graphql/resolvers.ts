import { DateTimeResolver, JSONResolver } from 'graphql-scalars';
import type { MeasurementRow, RunRow, StatusChangeRow } from '../db/schema.js';
import { NotFoundError } from '../errors.js';
import { streamStatusChanges } from '../events/status-feed.js';
import {
  endWithRequest,
  filterEvents,
  resolveEvent,
  type TerminalError,
} from '../events/terminal-error.js';
import { getStatusInfo, listStatuses } from '../lifecycle/lifecycle.js';
import { listMeasurements } from '../measurements/measurement-service.js';
import { allowedNextFor, type TransitionOutcome } from '../runs/run-service.js';
import {
  checkStatusChangeFilter,
  decodeStatusChangeCursor,
  getRun,
  listRunHistory,
  listRuns,
  listStatusChanges,
  statusChangeCursor,
} from '../runs/run-queries.js';
import { checkStringList, LIMITS } from '../validation.js';
import type { Resolvers } from './generated/resolvers-types.js';

/** The runs a loader found (a run deleted meanwhile is left out). */
function existing(rows: readonly (RunRow | null | Error)[]): RunRow[] {
  return rows.filter((r): r is RunRow => r != null && !(r instanceof Error));
}

/** Seconds from start to finish, or to now while the run is not finished. */
function durationOf(run: RunRow): number | null {
  if (!run.startedAt) return null;
  const end = run.finishedAt ?? new Date();
  return Math.max(0, (end.getTime() - run.startedAt.getTime()) / 1000);
}

/** Every resolver of schema.graphql; arrows go to services and queries, never to SQL. */
export const resolvers: Resolvers = {
  DateTime: DateTimeResolver,
  JSON: JSONResolver,

  Query: {
    run: (_, { id }, { db }) => getRun(db, id),
    runs: (_, args, { db }) => listRuns(db, args),
    statusChanges: (_, args, { db, tail }) => listStatusChanges(db, tail.position(), args),
    lifecycle: () => ({}),
  },

  Mutation: {
    createRun: (_, { input }, { runs }) => runs.createRun(input),
    transitionRun: (_, { input }, { runs }) => runs.transitionRun(input),
    transitionRuns: (_, { inputs }, { runs }) => runs.transitionRuns(inputs),
    reportProgress: (_, { input }, { runs }) =>
      runs.reportProgress(input.id, input.progress, input.phase, input.attempt),
    recordMeasurements: (_, { input }, { measurements }) =>
      measurements.recordMeasurements(input.runId, input.measurements),
    heartbeat: (_, { id, attempt }, { runs }) => runs.heartbeat(id, attempt),
    stopRun: (_, { id, message }, { runs }) => runs.stopRun(id, message),
    retryRun: (_, { id, reason }, { runs }) => runs.retryRun(id, reason),
    resumeRun: (_, { id, reason }, { runs }) => runs.resumeRun(id, reason),
  },

  Subscription: {
    statusChanged: {
      subscribe: (_, { filter, after }, { db, events, tail }) =>
        streamStatusChanges(
          { db, events, tail },
          checkStatusChangeFilter('filter', filter),
          after == null ? null : decodeStatusChangeCursor('after', after),
        ),
      resolve: (change: StatusChangeRow | TerminalError) => resolveEvent(change),
    },
    runUpdated: {
      subscribe: async (_, { id }, { db, events, request }) => {
        const run = await getRun(db, id);
        if (!run) throw new NotFoundError('run', id);
        return endWithRequest(filterEvents(events.subscribe('runUpdated', run.id)), request);
      },
      resolve: (run: RunRow | TerminalError) => resolveEvent(run),
    },
    measurementRecorded: {
      subscribe: async (_, { runId, names }, { db, events, request }) => {
        const run = await getRun(db, runId);
        if (!run) throw new NotFoundError('run', runId);
        const checked = checkStringList(
          'names',
          names,
          { min: 1, max: LIMITS.measurementNameLength },
          LIMITS.filterValues,
        );
        const wanted = checked == null ? null : new Set(checked);
        return endWithRequest(
          filterEvents(
            events.subscribe('measurementRecorded', run.id, {
              filter: (m) => wanted == null || wanted.has(m.name),
            }),
          ),
          request,
        );
      },
      resolve: (measurement: MeasurementRow | TerminalError) => resolveEvent(measurement),
    },
  },

  Run: {
    category: (run) => getStatusInfo(run.status).category,
    color: (run) => getStatusInfo(run.status).color,
    isDone: (run) => getStatusInfo(run.status).category === 'DONE',
    isFinal: (run) => getStatusInfo(run.status).isFinal,
    isRunning: (run) => getStatusInfo(run.status).category === 'RUNNING',
    isPending: (run) => ['PENDING', 'QUEUED'].includes(getStatusInfo(run.status).category),
    isStoppable: (run) => allowedNextFor(run).includes('STOPPING'),
    allowedTransitions: (run) => [...allowedNextFor(run)],
    duration: (run) => durationOf(run),
    statusHistory: (run, args, { db }) => listRunHistory(db, run.id, args),
    measurements: (run, args, { db }) => listMeasurements(db, run.id, args),
    latestMeasurements: (run, _, { loaders }) => loaders.latestMeasurements.load(run.id),
    upstreams: async (run, _, { loaders }) => {
      const { upstreams } = await loaders.dependencies.load(run.id);
      return existing(await loaders.runById.loadMany(upstreams));
    },
    downstreams: async (run, _, { loaders }) => {
      const { downstreams } = await loaders.dependencies.load(run.id);
      return existing(await loaders.runById.loadMany(downstreams));
    },
    isReady: (run) => run.blockedReason == null,
    memoizedFrom: (run, _, { loaders }) =>
      run.memoizedFrom == null ? null : loaders.runById.load(run.memoizedFrom),
  },

  StatusChange: {
    cursor: (change) => statusChangeCursor(change),
    run: async (change, _, { loaders }) => {
      const run = await loaders.runById.load(change.runId);
      if (!run) throw new NotFoundError('run', change.runId);
      return run;
    },
    from: (change) => change.fromStatus,
    to: (change) => change.toStatus,
  },

  Lifecycle: {
    statuses: () => [...listStatuses()],
  },

  StatusInfo: {
    allowedNext: (info) => [...info.allowedNext],
  },

  TransitionResult: {
    __resolveType: (result) => (result as TransitionOutcome).__typename,
  },
};
