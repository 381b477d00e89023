/**
 * Every configurable limit, with its default. Each refusal answers a GraphQL error with
 * `extensions.code` LIMIT_EXCEEDED (RATE_LIMITED for the mutation rate) naming the limit.
 */
export interface Limits {
  /** Nesting depth of an operation's selections. */
  maxDepth: number;
  /** Aliased fields in one operation (an alias flood runs a field many times). */
  maxAliases: number;
  /** Directives in one operation. */
  maxDirectives: number;
  /** Estimated cost: one per field, times `first` (or the page size) inside lists. */
  maxCost: number;
  /** Lexical tokens in one document (checked while parsing). */
  maxTokens: number;
  /** Bytes of an HTTP request body. */
  maxBodyBytes: number;
  /** Bytes of one WebSocket message, checked from its frame header before it is read. */
  maxWsFrameBytes: number;
  /** Open subscriptions on one WebSocket connection. */
  maxSubscriptionsPerConnection: number;
  /** Open subscriptions of one token on one instance (WebSocket and SSE together). */
  maxSubscriptionsPerToken: number;
  /** Mutation fields per second per token on one instance (a batch counts once); 0: off. */
  mutationsPerSecond: number;
  /** Mutations a token may save up and spend at once. */
  mutationBurst: number;
  /** Schema introspection (GraphiQL and codegen need it). */
  introspection: boolean;
}

export const DEFAULT_LIMITS: Limits = {
  maxDepth: 12,
  maxAliases: 30,
  maxDirectives: 50,
  maxCost: 50_000,
  maxTokens: 20_000,
  maxBodyBytes: 1_048_576,
  maxWsFrameBytes: 1_048_576,
  maxSubscriptionsPerConnection: 200,
  maxSubscriptionsPerToken: 20_000,
  mutationsPerSecond: 1_000,
  mutationBurst: 2_000,
  introspection: true,
};
