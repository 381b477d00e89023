import type { StatusChangeRow } from '../../db/schema.js';
import { streamStatusChanges } from '../../changelog/status-feed.js';
import { resolveEvent, type TerminalError } from '../../live/terminal-error.js';
import {
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
  },
  StatusChange: {
    cursor: (change) => statusChangeCursor(change),
    run: (change, _, { loaders }) => loadRun(loaders, change.runId),
    from: (change) => change.fromStatus,
    to: (change) => change.toStatus,
  },
};
