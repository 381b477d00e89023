import type { StatusChangeRow } from '../../db/schema.js';
import { streamStatusChanges } from '../../changelog/status-feed.js';
import { resolveEvent, type TerminalError } from '../../live/terminal-error.js';
import {
  checkCursorKept,
  checkStatusChangeFilter,
  decodeStatusChangeCursor,
  listStatusChanges,
  statusChangeCursor,
} from '../../runs/run-queries.js';
import type { Resolvers } from '../generated/resolvers-types.js';
import { guardSubscription, loadRun } from '../access.js';

/** changelog.graphql: the change log, paged and live. */
export const changelogResolvers: Resolvers = {
  Query: {
    statusChanges: (_, args, { db, tail, principal }) =>
      listStatusChanges(db, tail.position(), args, principal.projects),
  },
  Subscription: {
    statusChanged: {
      subscribe: async (_, { filter, after }, ctx) => {
        const checked = checkStatusChangeFilter('filter', filter, ctx.principal.projects);
        const afterId = after == null ? null : decodeStatusChangeCursor('after', after);
        if (afterId != null) await checkCursorKept(ctx.db, 'after', afterId);
        return guardSubscription(ctx, streamStatusChanges(ctx, checked, afterId));
      },
      resolve: (change: StatusChangeRow | TerminalError) => resolveEvent(change),
    },
  },
  StatusChange: {
    cursor: (change) => statusChangeCursor(change),
    run: (change, _, { loaders }) => loadRun(loaders, change.runId),
    from: (change) => change.fromStatus,
    to: (change) => change.toStatus,
  },
};
