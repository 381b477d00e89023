import type { Resolvers } from '../generated/resolvers-types.js';
import { requireRole } from '../access.js';

/** auth.graphql: API tokens and the caller. */
export const authResolvers: Resolvers = {
  Query: {
    viewer: (_, __, { principal }) => principal,
    apiTokens: (_, __, ctx) => ctx.auth.listTokens(requireRole(ctx, 'ADMIN', 'apiTokens')),
  },
  Mutation: {
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
  Viewer: {
    authEnabled: (_, __, { auth }) => auth.enabled,
  },
};
