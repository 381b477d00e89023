import type { RunRow } from '../../db/schema.js';
import { NotFoundError } from '../../errors.js';
import {
  endWithRequest,
  filterEvents,
  resolveEvent,
  type TerminalError,
} from '../../live/terminal-error.js';
import { getStatusInfo } from '../../lifecycle/lifecycle.js';
import { listMeasurements } from '../../measurements/measurement-service.js';
import { allowedNextFor, type TransitionOutcome } from '../../runs/run-service.js';
import { listRunHistory, listRuns, statusChangeCursor } from '../../runs/run-queries.js';
import type { Resolvers } from '../generated/resolvers-types.js';
import { outcomeReadsOf, pageReadsOf } from '../run-fields.js';
import {
  authorizeWrite,
  getVisibleRun,
  guardSubscription,
  loadVisibleRun,
  visible,
} from '../access.js';

/** Seconds from start to finish, or to now while the run is not finished. */
function durationOf(run: RunRow): number | null {
  if (!run.startedAt) return null;
  const end = run.finishedAt ?? new Date();
  return Math.max(0, (end.getTime() - run.startedAt.getTime()) / 1000);
}

/** The GraphQL result type of each kind of transition outcome. */
const RESULT_TYPE = {
  accepted: 'TransitionAccepted',
  illegal: 'IllegalTransition',
  conflict: 'TransitionConflict',
  notFound: 'RunNotFound',
} as const satisfies Record<TransitionOutcome['kind'], string>;

/** runs.graphql: creating runs, changing their status, reading them. */
export const runResolvers: Resolvers = {
  Query: {
    run: (_, { id }, { db, principal }) => getVisibleRun(db, principal, id),
    runs: async (_, args, { db, tail, principal }, info) => {
      // Read before the page: every change at or below it is committed, so the page shows it.
      const logCursor = statusChangeCursor({ id: tail.position() });
      const page = await listRuns(db, args, principal.projects, {}, pageReadsOf(info));
      return { ...page, logCursor };
    },
  },

  Mutation: {
    createRun: (_, { input }, ctx) => ctx.runs.createRun(input, authorizeWrite(ctx, 'createRun')),
    // An answer that does not show the run lets the common change skip reading it.
    transitionRun: (_, { input }, ctx, info) =>
      ctx.runs.transitionRun(
        input,
        authorizeWrite(ctx, 'transitionRun with force', { force: input.force === true }),
        outcomeReadsOf(info),
      ),
    transitionRuns: (_, { inputs }, ctx, info) =>
      ctx.runs.transitionRuns(
        inputs,
        authorizeWrite(ctx, 'transitionRuns with force', {
          force: inputs.some((i) => i.force === true),
        }),
        outcomeReadsOf(info),
      ),
    reportProgress: (_, { input }, ctx) =>
      ctx.runs.reportProgress(
        input.id,
        input.progress,
        input.phase,
        input.attempt,
        authorizeWrite(ctx, 'reportProgress'),
      ),
    heartbeat: (_, { id, attempt }, ctx) =>
      ctx.runs.heartbeat(id, attempt, authorizeWrite(ctx, 'heartbeat')),
    stopRun: (_, { id, message }, ctx) =>
      ctx.runs.stopRun(id, message, authorizeWrite(ctx, 'stopRun')),
    retryRun: (_, { id, reason }, ctx) =>
      ctx.runs.retryRun(id, reason, authorizeWrite(ctx, 'retryRun')),
    resumeRun: (_, { id, reason }, ctx) =>
      ctx.runs.resumeRun(id, reason, authorizeWrite(ctx, 'resumeRun')),
  },

  Subscription: {
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
  },

  // Fields read from the run's status or blockedReason alone are listed in run-fields.ts.
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
    memoizedFrom: (run, _, ctx) => loadVisibleRun(ctx, run.memoizedFrom),
  },

  TransitionResult: {
    __resolveType: (result) => RESULT_TYPE[(result as TransitionOutcome).kind],
  },
};
