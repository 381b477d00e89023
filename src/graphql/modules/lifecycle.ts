import { listStatuses } from '../../lifecycle/lifecycle.js';
import type { Resolvers } from '../generated/resolvers-types.js';

/** lifecycle.graphql: the lifecycle module's data, as it is. */
export const lifecycleResolvers: Resolvers = {
  Query: {
    lifecycle: () => ({}),
  },
  Lifecycle: {
    statuses: () => [...listStatuses()],
  },
  StatusInfo: {
    allowedNext: (info) => [...info.allowedNext],
  },
};
