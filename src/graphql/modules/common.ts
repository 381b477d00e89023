import { DateTimeResolver, JSONResolver } from 'graphql-scalars';
import type { Resolvers } from '../generated/resolvers-types.js';

/** The scalars. */
export const commonResolvers: Resolvers = {
  DateTime: DateTimeResolver,
  JSON: JSONResolver,
};
