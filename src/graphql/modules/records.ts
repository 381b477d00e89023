import type { Resolvers } from '../generated/resolvers-types.js';
import { authorizeWrite } from '../access.js';

/**
 * records.graphql: updateRun and deleteRun. The new fields of runs and changes (outcome, exitCode, meta,
 * attempt, attributes) are columns, read by the default resolvers.
 */
export const recordResolvers: Resolvers = {
  Mutation: {
    updateRun: (_, { input }, ctx) => ctx.runs.updateRun(input, authorizeWrite(ctx, 'updateRun')),
    deleteRun: (_, { id }, ctx) =>
      ctx.runs.deleteRun(id, authorizeWrite(ctx, 'deleteRun', { admin: true })),
  },
};
