import { BREAK, GraphQLError, visit, type DocumentNode } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { LimitExceededError } from '../errors.js';

/**
 * Parsing limits, and one code for every document that does not parse.
 *
 * graphql-js parses and validates recursively: a document nested a few thousand levels deep
 * (a literal, or inline fragments) overflows the stack with a RangeError, in the parser or later
 * in a validation rule, which would surface as a 500 (and, on WebSocket, close the whole
 * connection). So the nesting of the parsed document is measured here, without recursion, and
 * refused before any rule walks it: BAD_USER_INPUT. Too many tokens is the `tokens` limit
 * (LIMIT_EXCEEDED). Any other syntax error is GRAPHQL_PARSE_FAILED (HTTP 400) on every transport:
 * yoga caches a parse error by document text, so the error must carry its code whichever
 * transport met the document first. Depth, cost and aliases of the operation are checked in
 * query-limits.ts.
 */

/** AST levels a document may nest (a field level is two: the field and its selection set). */
const MAX_AST_DEPTH = 400;

function tooDeep(): GraphQLError {
  return new GraphQLError('Syntax Error: the document is nested too deeply.', {
    extensions: { code: 'BAD_USER_INPUT', http: { status: 400 } },
  });
}

function checkNesting(document: DocumentNode): void {
  let depth = 0;
  let exceeded = false;
  // graphql-js's visit() keeps its own stack: it does not recurse.
  visit(document, {
    enter() {
      if (++depth > MAX_AST_DEPTH) {
        exceeded = true;
        return BREAK;
      }
      return undefined;
    },
    leave() {
      depth--;
    },
  });
  if (exceeded) throw tooDeep();
}

export function useParserLimits(options: { maxTokens: number }): Plugin {
  return {
    onParse({ parseFn, setParseFn }) {
      setParseFn((source, parseOptions) => {
        let document: DocumentNode;
        try {
          document = parseFn(source, { ...parseOptions, maxTokens: options.maxTokens });
        } catch (error) {
          // graphql-js words it "more that N tokens".
          if (
            error instanceof GraphQLError &&
            /contains more tha[nt] \d+ tokens/.test(error.message)
          ) {
            throw new LimitExceededError(
              'tokens',
              options.maxTokens,
              `The document has more than ${options.maxTokens} tokens.`,
              400,
            );
          }
          if (error instanceof RangeError) throw tooDeep();
          if (error instanceof GraphQLError) {
            throw new GraphQLError(error.message, {
              source: error.source,
              positions: error.positions,
              extensions: { code: 'GRAPHQL_PARSE_FAILED', http: { status: 400 } },
            });
          }
          throw error;
        }
        checkNesting(document);
        return document;
      });
    },
  };
}
