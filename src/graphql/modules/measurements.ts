import type { MeasurementRow } from '../../db/schema.js';
import { NotFoundError } from '../../errors.js';
import {
  resolveEvent,
  filterEvents,
  endWithRequest,
  type TerminalError,
} from '../../live/terminal-error.js';
import { checkStringList, LIMITS } from '../../validation.js';
import type { Resolvers } from '../generated/resolvers-types.js';
import { authorizeWrite, getVisibleRun, guardSubscription } from '../access.js';

/** measurements.graphql: recording points, and following them live. */
export const measurementResolvers: Resolvers = {
  Mutation: {
    recordMeasurements: (_, { input }, ctx) =>
      ctx.measurements.recordMeasurements(
        input.runId,
        input.measurements,
        authorizeWrite(ctx, 'recordMeasurements'),
        input.idempotencyKey,
      ),
  },
  Subscription: {
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
};
