import {
  GraphQLError,
  getOperationAST,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  type OperationDefinitionNode,
  type Source,
  type SourceLocation,
} from 'graphql';
import { getVariableValues } from 'graphql/execution/values.js';
import { compileQuery, isCompiledQuery, type CompiledQuery } from 'graphql-jit';
import type { Plugin } from 'graphql-yoga';

/** Executions of one operation before it is compiled: a document sent once is not worth it. */
const USES_BEFORE_COMPILING = 2;

interface Operation {
  uses: number;
  /** Compiled once used often enough; null when graphql-jit cannot compile it. */
  compiled?: CompiledQuery | null;
}

/**
 * Queries that come again run as code compiled for their document (graphql-jit), not through the
 * general executor: a page of 50 runs resolves some 350 fields, and the executor's work per field
 * (resolve info, paths, argument maps, promise checks) was most of its cost (issue 18).
 *
 * Only queries: a mutation resolves one root field (nothing to gain), and subscriptions share
 * their executions already (shared-subscription-execution.ts). The variables are coerced by
 * graphql-js first, so every answer about a variable that does not coerce is graphql-js's own
 * (executed as before), and input fields get their defaults as the spec says: graphql-jit 0.8
 * refuses a non-null input field left out even when the schema gives it a default (`RunOrder`'s).
 * graphql-jit coerces the coerced values again, which is the identity for this schema's inputs
 * (enums named as their values, DateTime taking a Date, JSON).
 *
 * Errors are answered as graphql-js answers them: located in the query, and what graphql-jit
 * raises itself (a null for a non-null field, say) carried as an original error, so error
 * masking hides it as it hid graphql-js's.
 *
 * A document is compiled on its second execution, kept with the parsed document (yoga caches
 * those per query text, so a hot query is one document) and dropped with it.
 */
export function useCompiledQueries(onCompileError: (errors: unknown) => void): Plugin {
  const byDocument = new WeakMap<DocumentNode, Map<string, Operation>>();

  function compiledFor(args: ExecutionArgs): CompiledQuery | null {
    let operations = byDocument.get(args.document);
    if (!operations) byDocument.set(args.document, (operations = new Map()));
    const name = args.operationName ?? '';
    let operation = operations.get(name);
    if (!operation) operations.set(name, (operation = { uses: 0 }));
    if (operation.compiled !== undefined) return operation.compiled;
    if (++operation.uses < USES_BEFORE_COMPILING) return null;
    const compiled = compileQuery(args.schema, args.document, args.operationName ?? undefined, {
      // What a resolver throws keeps its own stack; the errors graphql-jit makes need none.
      disablingCapturingStackErrors: true,
    });
    if (isCompiledQuery(compiled)) return (operation.compiled = compiled);
    onCompileError(compiled.errors);
    return (operation.compiled = null);
  }

  return {
    onExecute({ args, executeFn, setExecuteFn }) {
      const operation = getOperationAST(args.document, args.operationName);
      if (operation?.operation !== 'query') return;
      const compiled = compiledFor(args);
      if (!compiled) return;
      setExecuteFn((args: ExecutionArgs) => {
        const variables = coerceVariables(args, operation);
        // Not coercible: executed as before, so the answer (and its HTTP status) is graphql-js's.
        if (!variables) return executeFn(args);
        const source = args.document.loc?.source;
        // graphql-js stops resolving a field's siblings once one of them fails and takes its
        // parent with it (a non-null field); graphql-jit resolves them all and reports each
        // error. An answer with several errors is rare (a bad variable used twice, say): it is
        // answered uncompiled, so the answer is the one graphql-js gave it the first time.
        const finish = (result: ExecutionResult) =>
          (result.errors?.length ?? 0) > 1 ? executeFn(args) : asExecuted(result, source);
        const result = compiled.query(args.rootValue, args.contextValue, variables);
        return result instanceof Promise ? result.then(finish) : finish(result);
      });
    },
  };
}

/** The operation's variables as graphql-js coerces them, or null when they do not coerce. */
function coerceVariables(
  args: ExecutionArgs,
  operation: OperationDefinitionNode,
): Record<string, unknown> | null {
  const definitions = operation.variableDefinitions ?? [];
  if (definitions.length === 0) return {};
  const values = getVariableValues(args.schema, definitions, args.variableValues ?? {}, {
    maxErrors: 1,
  });
  return values.errors ? null : values.coerced;
}

/** graphql-jit's error as graphql-js makes it, errors first as graphql-js writes them. */
function asExecuted(result: ExecutionResult, source: Source | undefined): ExecutionResult {
  if (!result.errors?.length) return result;
  const errors = result.errors.map(
    (error) =>
      new GraphQLError(error.message, {
        source,
        positions: source && error.locations?.map((at) => offsetOf(source.body, at)),
        path: error.path,
        originalError: error.originalError ?? new Error(error.message),
        extensions: error.extensions,
      }),
  );
  return { errors, data: result.data };
}

/** The offset in `body` of a line and column (both from 1), as graphql-js counts lines. */
function offsetOf(body: string, { line, column }: SourceLocation): number {
  const lineBreak = /\r\n|[\n\r]/g;
  let start = 0;
  for (let current = 1; current < line; current++) {
    if (!lineBreak.exec(body)) break;
    start = lineBreak.lastIndex;
  }
  return start + column - 1;
}
