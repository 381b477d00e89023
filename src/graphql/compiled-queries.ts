import {
  GraphQLError,
  Kind,
  getOperationAST,
  visit,
  type ASTNode,
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
import { isDatabaseUnavailable } from '../db/unavailable.js';
import { requestIdIn } from '../ops/request-context.js';

/** Executions of one operation before it is compiled: a document sent once is not worth it. */
const USES_BEFORE_COMPILING = 2;

interface Compiled {
  query: CompiledQuery;
  /** Variables written inside an input object or list of the query (`{ field: $f }`). */
  nestedVariables: readonly string[];
}

interface Operation {
  uses: number;
  /** Compiled once used often enough; null when graphql-jit cannot compile it. */
  compiled?: Compiled | null;
}

/**
 * Queries that come again run as code compiled for their document (graphql-jit), not through the
 * executor: a page of 50 runs resolves some 350 fields, and the executor's work per field
 * (resolve info, paths, argument maps, promise checks) was most of its cost (issue 18).
 *
 * Only queries: a mutation resolves one root field (nothing to gain), and subscriptions share
 * their executions already (shared-subscription-execution.ts). Every answer is the one the
 * executor gives (graphql-js's rules), where graphql-jit 0.8 would answer otherwise:
 * - Variables are coerced by graphql-js first; those that do not coerce are executed as before,
 *   so the refusal (and its 400) is the executor's. graphql-jit refuses a non-null input field
 *   left out even when the schema gives it a default (`RunOrder`'s), and words refusals its own
 *   way. It coerces the coerced values again: the identity for this schema's inputs (enums
 *   named as their values, DateTime taking a Date, JSON).
 * - A variable left out that the query writes inside an input object or list: executed as
 *   before. graphql-jit puts null there; the executor leaves the field out, so that its default
 *   applies.
 * - An error a resolver threw is located in the query as the executor locates it (graphql-jit
 *   keeps no nodes). An error graphql-jit raised itself (a null for a non-null field, a value a
 *   type cannot represent: a bug of the service) is worded and masked its own way: such an
 *   answer is executed again, as before.
 * - A property that throws (a getter's bug) is read inline by graphql-jit, outside its error
 *   handling: such an answer is executed again, as before (THROWN_IN_HANDLER).
 * - The executor stops resolving a field's siblings once one fails and takes its parent with it
 *   (a non-null field); graphql-jit resolves them all and reports each error. An answer with
 *   several errors (a bad variable used twice, say) is executed again, as before, unless the
 *   database is away: then each error is the same 503, and executing again would add load.
 *
 * A document is compiled on its second execution, kept with the parsed document (yoga caches
 * those per query text, so a hot query is one document) and dropped with it.
 */
export function useCompiledQueries(
  onCompileError: (errors: unknown, requestId: string | undefined) => void,
): Plugin {
  const byDocument = new WeakMap<DocumentNode, Map<string, Operation>>();

  function compiledFor(args: ExecutionArgs): Compiled | null {
    let operations = byDocument.get(args.document);
    if (!operations) byDocument.set(args.document, (operations = new Map()));
    const name = args.operationName ?? '';
    let operation = operations.get(name);
    if (!operation) operations.set(name, (operation = { uses: 0 }));
    if (operation.compiled !== undefined) return operation.compiled;
    if (++operation.uses < USES_BEFORE_COMPILING) return null;
    const query = compileQuery(args.schema, args.document, args.operationName ?? undefined, {
      // What a resolver throws keeps its own stack; the errors graphql-jit makes need none.
      disablingCapturingStackErrors: true,
    });
    if (!isCompiledQuery(query)) {
      onCompileError(query.errors, requestIdIn(args.contextValue));
      return (operation.compiled = null);
    }
    return (operation.compiled = { query, nestedVariables: nestedVariablesOf(args.document) });
  }

  return {
    onExecute({ args, executeFn, setExecuteFn }) {
      const operation = getOperationAST(args.document, args.operationName);
      if (operation?.operation !== 'query') return;
      const compiled = compiledFor(args);
      if (!compiled) return;
      setExecuteFn((args: ExecutionArgs) => {
        const variables = coerceVariables(args, operation);
        if (!variables || compiled.nestedVariables.some((name) => !(name in variables)))
          return executeFn(args);
        const source = args.document.loc?.source;
        const finish = (result: ExecutionResult) =>
          answeredAsExecuted(result) ? asExecuted(result, source) : executeFn(args);
        let result: ReturnType<CompiledQuery['query']>;
        try {
          result = compiled.query.query(args.rootValue, args.contextValue, variables);
        } catch {
          // A property read inline threw (see THROWN_IN_HANDLER), with nothing awaited yet.
          return executeFn(args);
        }
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

/** The names of the variables a document writes inside an input object or list. */
function nestedVariablesOf(document: DocumentNode): string[] {
  const names = new Set<string>();
  visit(document, {
    Variable(node, _key, _parent, _path, ancestors) {
      const inside = ancestors.some(
        (a) => 'kind' in a && ((a as ASTNode).kind === Kind.OBJECT || a.kind === Kind.LIST),
      );
      if (inside) names.add(node.name.value);
    },
  });
  return [...names];
}

/**
 * Whether a compiled answer is the executor's: one without errors, or with one error a resolver
 * threw; or one whose errors are all the database being away (the same 503 however many).
 */
function answeredAsExecuted({ errors }: ExecutionResult): boolean {
  if (!errors?.length) return true;
  if (errors.some((error) => thrownInHandler(error.originalError))) return false;
  if (errors.every((error) => isDatabaseUnavailable(error.originalError))) return true;
  return errors.length === 1 && errors[0]!.originalError != null;
}

/**
 * graphql-jit reads a field without a resolver inline (a property, a getter), outside the `try`
 * around resolver calls. One that throws after a resolver's promise settled took the execution
 * down: its promise never settled (the request hung) and the throw was an unhandled rejection.
 * patches/graphql-jit+0.8.9.patch reports it as the awaiting field's error, with this mark, so
 * that the answer is the executor's (which locates it at the property).
 */
const THROWN_IN_HANDLER = Symbol.for('graphql-jit.thrownInHandler');

function thrownInHandler(error: unknown): boolean {
  return typeof error === 'object' && error !== null && THROWN_IN_HANDLER in error;
}

/** graphql-jit's errors as the executor makes them, errors first as it writes them. */
function asExecuted(result: ExecutionResult, source: Source | undefined): ExecutionResult {
  if (!result.errors?.length) return result;
  const errors = result.errors.map(
    (error) =>
      new GraphQLError(error.message, {
        source,
        positions: source && error.locations?.map((at) => offsetOf(source.body, at)),
        path: error.path,
        originalError: error.originalError,
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
