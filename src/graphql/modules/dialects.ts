import type { RunRow } from '../../db/schema.js';
import {
  getDialect,
  listDialects,
  nativeNameOf,
  predicatesHolding,
} from '../../lifecycle/dialects.js';
import type { Resolvers } from '../generated/resolvers-types.js';
import { loadRun } from '../access.js';

/** A run's status as it was recorded: its status, outcome and the reason it was entered for. */
function recordedStatus(run: RunRow) {
  return { status: run.status, outcome: run.outcome, reason: run.statusReason };
}

/** dialects.graphql: the dialect table (lifecycle/dialects.ts), and runs read in it. */
export const dialectResolvers: Resolvers = {
  Query: {
    dialects: () => [...listDialects()],
    dialect: (_, { name }) => getDialect(name),
  },
  DialectInfo: {
    statuses: (info) => [...info.statuses],
    predicates: (info) => [...info.predicates],
  },
  NativeStatus: {
    aliases: (status) => [...status.aliases],
  },
  StatusPredicate: {
    statuses: (predicate) => [...predicate.statuses],
  },
  Run: {
    nativeStatus: (run, { dialect }) => nativeNameOf(dialect ?? run.dialect, recordedStatus(run)),
    predicates: (run, { dialect }) => predicatesHolding(dialect ?? run.dialect, run.status),
  },
  StatusChange: {
    nativeTo: async (change, { dialect }, { loaders }) => {
      let inDialect = dialect;
      // The run's home dialect never changes: any read of the run tells it.
      inDialect ??= (await loadRun(loaders, change.runId)).dialect;
      return nativeNameOf(inDialect, {
        status: change.toStatus,
        outcome: change.outcome,
        reason: change.reason,
      });
    },
  },
};
