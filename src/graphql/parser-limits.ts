import { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { LimitExceededError } from '../errors.js';

/**
 * Parsing limits. graphql-js parses recursively: a literal nested a few thousand levels deep
 * overflows the stack with a RangeError, which would surface as a 500 (and, on WebSocket, close
 * the whole connection). Too deep is the client's error: BAD_USER_INPUT. Too many tokens is
 * the `tokens` limit (LIMIT_EXCEEDED). Depth, cost and aliases are checked in query-limits.ts.
 */
export function useParserLimits(options: { maxTokens: number }): Plugin {
  return {
    onParse({ parseFn, setParseFn }) {
      setParseFn((source, parseOptions) => {
        try {
          return parseFn(source, { ...parseOptions, maxTokens: options.maxTokens });
        } catch (error) {
          if (
            error instanceof GraphQLError &&
            /contains more tha[nt] \d+ tokens/.test(error.message)
          ) {
            throw new LimitExceededError(
              'tokens',
              options.maxTokens,
              `The document has more than ${options.maxTokens} tokens.`,
            );
          }
          if (error instanceof RangeError) {
            throw new GraphQLError('Syntax Error: the document is nested too deeply.', {
              extensions: { code: 'BAD_USER_INPUT' },
            });
          }
          throw error;
        }
      });
    },
  };
}
