import type { RunRow } from '../../db/schema.js';
import { getStatusInfo, RUN_STATUSES, type RunStatus } from '../../lifecycle/lifecycle.js';
import {
  checkRunFilter,
  countRuns,
  getRunByOp,
  listDependencies,
  listRuns,
  statusChangeCursor,
} from '../../runs/run-queries.js';
import type { Resolvers } from '../generated/resolvers-types.js';
import { pageReadsOf } from '../run-fields.js';
import { loadVisibleRun, visible } from '../access.js';

/** Counts per status in lifecycle order, without zeros. */
function statusCounts(counts: ReadonlyMap<RunStatus, number>) {
  return RUN_STATUSES.flatMap((status) => {
    const count = counts.get(status) ?? 0;
    return count > 0 ? [{ status, category: getStatusInfo(status).category, count }] : [];
  });
}

/** pipelines.graphql: steps, conditions, schedules and counts. */
export const pipelineResolvers: Resolvers = {
  Query: {
    runCounts: async (_, { filter }, { db, principal }) =>
      statusCounts(await countRuns(db, checkRunFilter('filter', filter, principal.projects))),
    runByOp: async (_, { parentId, op }, { db, principal }) =>
      visible(principal, [await getRunByOp(db, parentId, op)])[0] ?? null,
  },
  Run: {
    parent: (run, _, ctx) => loadVisibleRun(ctx, run.parentId),
    children: async (run, args, { db, tail, principal }, info) => {
      const logCursor = statusChangeCursor({ id: tail.position() });
      const within = { parentId: run.id };
      const page = await listRuns(db, args, principal.projects, within, pageReadsOf(info));
      return { ...page, logCursor };
    },
    childCounts: async (run: RunRow, _, { db, principal }) =>
      statusCounts(
        await countRuns(db, { statuses: null, projects: principal.projects, parentId: run.id }),
      ),
    // An upstream outside the token's projects is left out, as Run.upstreams leaves it out.
    dependencies: async (run, _, { db, loaders, principal }) => {
      const dependencies = await listDependencies(db, run);
      const runs = visible(
        principal,
        await loaders.runById.loadMany(dependencies.map((d) => d.upstreamId)),
      );
      // Each upstream read once: the Dependency carries it (the loaders do not cache).
      return dependencies.flatMap((d) => {
        const upstream = runs.find((r) => r.id === d.upstreamId);
        return upstream ? [{ ...d, run: upstream }] : [];
      });
    },
  },
  RunConnection: {
    totalCount: (connection) => connection.totalCount(),
  },
  Dependency: {
    run: (dependency) => dependency.run,
    when: (dependency) => dependency.when,
    isSatisfied: (dependency) => dependency.satisfied,
    canStillBeSatisfied: (dependency) => dependency.possible,
  },
};
