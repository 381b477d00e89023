import { DateTimeResolver, JSONResolver } from 'graphql-scalars';
import type { MeasurementRow, RunRow, StatusChangeRow } from '../db/schema.js';
import { NotFoundError } from '../errors.js';
import { streamStatusChanges } from '../changelog/status-feed.js';
import {
  endWithRequest,
  filterEvents,
  resolveEvent,
  type TerminalError,
} from '../live/terminal-error.js';
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
import { canSeeProject, type Principal } from '../auth/principal.js';
import { authorizeWrite, guardSubscription, requireRole } from './access.js';
import type { Resolvers } from './generated/resolvers-types.js';

/** The runs a loader found that the token may see (a run deleted meanwhile is left out). */
function visible(principal: Principal, rows: readonly (RunRow | null | Error)[]): RunRow[] {
  return rows.filter(
    (r): r is RunRow => r != null && !(r instanceof Error) && canSeeProject(principal, r.project),
  );
}

/** A run the token may see, or null. */
async function getVisibleRun(db: Parameters<typeof getRun>[0], principal: Principal, id: string) {
  const run = await getRun(db, id);
  return run && canSeeProject(principal, run.project) ? run : null;
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
    run: (_, { id }, { db, principal }) => getVisibleRun(db, principal, id),
    runs: async (_, args, { db, tail, principal }) => {
      // Read before the page: every change at or below it is committed, so the page shows it.
      const logCursor = statusChangeCursor({ id: tail.position() });
      return { ...(await listRuns(db, args, principal.projects)), logCursor };
    },
    statusChanges: (_, args, { db, tail, principal }) =>
      listStatusChanges(db, tail.position(), args, principal.projects),
    lifecycle: () => ({}),
    viewer: (_, __, { principal }) => principal,
    apiTokens: (_, __, ctx) => ctx.auth.listTokens(requireRole(ctx, 'ADMIN', 'apiTokens')),
  },

  Mutation: {
    createRun: (_, { input }, ctx) => ctx.runs.createRun(input, authorizeWrite(ctx, 'createRun')),
    transitionRun: (_, { input }, ctx) =>
      ctx.runs.transitionRun(
        input,
        authorizeWrite(ctx, 'transitionRun with force', { force: input.force === true }),
      ),
    transitionRuns: (_, { inputs }, ctx) =>
      ctx.runs.transitionRuns(
        inputs,
        authorizeWrite(ctx, 'transitionRuns with force', {
          force: inputs.some((i) => i.force === true),
        }),
      ),
    reportProgress: (_, { input }, ctx) =>
      ctx.runs.reportProgress(
        input.id,
        input.progress,
        input.phase,
        input.attempt,
        authorizeWrite(ctx, 'reportProgress'),
      ),
    recordMeasurements: (_, { input }, ctx) =>
      ctx.measurements.recordMeasurements(
        input.runId,
        input.measurements,
        authorizeWrite(ctx, 'recordMeasurements'),
        input.idempotencyKey,
      ),
    heartbeat: (_, { id, attempt }, ctx) =>
      ctx.runs.heartbeat(id, attempt, authorizeWrite(ctx, 'heartbeat')),
    stopRun: (_, { id, message }, ctx) =>
      ctx.runs.stopRun(id, message, authorizeWrite(ctx, 'stopRun')),
    retryRun: (_, { id, reason }, ctx) =>
      ctx.runs.retryRun(id, reason, authorizeWrite(ctx, 'retryRun')),
    resumeRun: (_, { id, reason }, ctx) =>
      ctx.runs.resumeRun(id, reason, authorizeWrite(ctx, 'resumeRun')),
    createApiToken: async (_, { input }, ctx) => {
      const { secret, token } = await ctx.auth.createToken(
        requireRole(ctx, 'ADMIN', 'createApiToken'),
        input,
      );
      return { token: secret, apiToken: token };
    },
    revokeApiToken: (_, { id }, ctx) =>
      ctx.auth.revokeToken(requireRole(ctx, 'ADMIN', 'revokeApiToken'), id),
  },

  Subscription: {
    statusChanged: {
      subscribe: (_, { filter, after }, ctx) =>
        guardSubscription(
          ctx,
          streamStatusChanges(
            ctx,
            checkStatusChangeFilter('filter', filter, ctx.principal.projects),
            after == null ? null : decodeStatusChangeCursor('after', after),
          ),
        ),
      resolve: (change: StatusChangeRow | TerminalError) => resolveEvent(change),
    },
    runUpdated: {
      subscribe: async (_, { id }, ctx) => {
        const run = await getVisibleRun(ctx.db, ctx.principal, id);
        if (!run) throw new NotFoundError('run', id);
        return endWithRequest(
          guardSubscription(ctx, filterEvents(ctx.events.subscribe('runUpdated', run.id))),
          ctx.request,
        );
      },
      resolve: (run: RunRow | TerminalError) => resolveEvent(run),
    },
    measurementRecorded: {
      subscribe: async (_, { runId, names }, ctx) => {
        const run = await getVisibleRun(ctx.db, ctx.principal, runId);
        if (!run) throw new NotFoundError('run', runId);
        const checked = checkStringList(
          'names',
          names,
          { min: 1, max: LIMITS.measurementNameLength },
          LIMITS.filterValues,
        );
        const wanted = checked == null ? null : new Set(checked);
        return endWithRequest(
          guardSubscription(
            ctx,
            filterEvents(
              ctx.events.subscribe('measurementRecorded', run.id, {
                filter: (m) => wanted == null || wanted.has(m.name),
              }),
            ),
          ),
          ctx.request,
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
    upstreams: async (run, _, { loaders, principal }) => {
      const { upstreams } = await loaders.dependencies.load(run.id);
      return visible(principal, await loaders.runById.loadMany(upstreams));
    },
    downstreams: async (run, _, { loaders, principal }) => {
      const { downstreams } = await loaders.dependencies.load(run.id);
      return visible(principal, await loaders.runById.loadMany(downstreams));
    },
    isReady: (run) => run.blockedReason == null,
    memoizedFrom: async (run, _, { loaders, principal }) =>
      run.memoizedFrom == null
        ? null
        : (visible(principal, [await loaders.runById.load(run.memoizedFrom)])[0] ?? null),
  },

  Viewer: {
    authEnabled: (_, __, { auth }) => auth.enabled,
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
    __resolveType: (result) => RESULT_TYPE[(result as TransitionOutcome).kind],
  },
};

/** The GraphQL result type of each kind of transition outcome. */
const RESULT_TYPE = {
  accepted: 'TransitionAccepted',
  illegal: 'IllegalTransition',
  conflict: 'TransitionConflict',
  notFound: 'RunNotFound',
} as const satisfies Record<TransitionOutcome['kind'], string>;
