import type { Resolvers } from '../generated/resolvers-types.js';
import { authorizeWrite } from '../access.js';

/**
 * records.graphql: updateRun. The new fields of runs and changes (outcome, exitCode, meta,
 * attempt, attributes) are columns, read by the default resolvers.
 */
export const recordResolvers: Resolvers = {
  Mutation: {
    updateRun: (_, { input }, ctx) => ctx.runs.updateRun(input, authorizeWrite(ctx, 'updateRun')),
  },
};
