import { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';

/**
 * Parsing limits. graphql-js parses recursively: a literal nested a few thousand levels deep
 * overflows the stack with a RangeError, which would surface as a 500 (and, on WebSocket, close
 * the whole connection). Too many tokens, or too deep, is the client's error: BAD_USER_INPUT.
 * (Depth, cost and alias limits on the operation itself are the job of graphql-armor, later.)
 */
export function useParserLimits(options: { maxTokens: number }): Plugin {
  return {
    onParse({ parseFn, setParseFn }) {
      setParseFn((source, parseOptions) => {
        try {
          return parseFn(source, { ...parseOptions, maxTokens: options.maxTokens });
        } catch (error) {
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
