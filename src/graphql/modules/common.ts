import type { GraphQLScalarType } from 'graphql';
import { DateTimeResolver, JSONResolver } from 'graphql-scalars';
import type { Resolvers } from '../generated/resolvers-types.js';

/**
 * Only how a scalar is read and written, from graphql-scalars: its description (and anything
 * else it would bring, such as `@specifiedBy`) stays schema.graphql's, so the schema served is
 * the schema written (graphql-tools copies every property of a scalar's resolver onto the type).
 */
function codecOf(scalar: GraphQLScalarType): GraphQLScalarType {
  const { serialize, parseValue, parseLiteral } = scalar;
  return { serialize, parseValue, parseLiteral } as unknown as GraphQLScalarType;
}

/** The scalars. */
export const commonResolvers: Resolvers = {
  DateTime: codecOf(DateTimeResolver),
  JSON: codecOf(JSONResolver),
};
