import type { Resolvers } from './generated/resolvers-types.js';
import { authResolvers } from './modules/auth.js';
import { changelogResolvers } from './modules/changelog.js';
import { commonResolvers } from './modules/common.js';
import { dialectResolvers } from './modules/dialects.js';
import { lifecycleResolvers } from './modules/lifecycle.js';
import { measurementResolvers } from './modules/measurements.js';
import { pipelineResolvers } from './modules/pipelines.js';
import { recordResolvers } from './modules/records.js';
import { runResolvers } from './modules/runs.js';

/**
 * Every resolver of schema.graphql, by module (src/graphql/modules/: each module's schema part
 * beside its resolvers); arrows go to services and queries, never to SQL.
 */
export const resolvers: Resolvers = mergeResolvers([
  commonResolvers,
  lifecycleResolvers,
  runResolvers,
  pipelineResolvers,
  changelogResolvers,
  dialectResolvers,
  measurementResolvers,
  recordResolvers,
  authResolvers,
]);

/** One resolver map: each type's fields from every module (a field defined twice is a bug). */
function mergeResolvers(modules: readonly Resolvers[]): Resolvers {
  const merged: Record<string, Record<string, unknown>> = {};
  for (const module of modules) {
    for (const [type, fields] of Object.entries(module)) {
      const target = (merged[type] ??= {});
      if (
        typeof fields !== 'object' ||
        fields == null ||
        Object.getPrototypeOf(fields) !== Object.prototype
      ) {
        merged[type] = fields as never; // a scalar's GraphQLScalarType
        continue;
      }
      for (const [field, resolver] of Object.entries(fields)) {
        if (field in target) throw new Error(`${type}.${field} is resolved by two modules`);
        target[field] = resolver;
      }
    }
  }
  return merged as Resolvers;
}
