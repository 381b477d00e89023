import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { blockFieldSuggestionsPlugin } from '@escape.tech/graphql-armor-block-field-suggestions';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import { maxDirectivesRule } from '@escape.tech/graphql-armor-max-directives';
import {
  Kind,
  NoSchemaIntrospectionCustomRule,
  visit,
  type DocumentNode,
  type ExecutionArgs,
  type GraphQLError,
  type ValidationContext,
  type ValidationRule,
  type ValueNode,
} from 'graphql';
import { getComplexity, type ComplexityEstimator } from 'graphql-query-complexity';
import type { Plugin } from 'graphql-yoga';
import { LimitExceededError } from '../errors.js';

/**
 * Limits on the operation itself, checked at validation, before anything runs. Depth, aliases
 * and directives come from graphql-armor; cost from graphql-query-complexity, because it can
 * multiply a list's selection by the page size asked for (`first`), which is what makes
 * `runs(first: 500) { … statusHistory(first: 500) … }` expensive. Every refusal answers
 * LIMIT_EXCEEDED with `extensions.limit` naming the limit and `extensions.max` its value.
 */
export interface QueryLimits {
  maxDepth: number;
  maxAliases: number;
  maxDirectives: number;
  maxCost: number;
  introspection: boolean;
}

/** Page sizes a connection field gets when `first` is not given (as in run-queries.ts). */
const DEFAULT_FIRST: Record<string, number> = { runs: 50 };
const DEFAULT_PAGE = 100;
/** Lists without a page size (tags, upstreams, latestMeasurements …) are assumed this long. */
const UNPAGED_LIST = 10;

/**
 * How deep introspection may nest, in fields (fragments flattened). graphql-armor's depth rule
 * leaves `__schema` out (its default): the standard introspection query is 15 fields deep (21
 * counting its fragments as levels, as that rule does). A rule of its own bounds it instead.
 */
const INTROSPECTION_MAX_DEPTH = 20;

/** The arguments the estimator reads: the cost depends on variables only through them. */
const PRICED_ARGUMENTS = new Set(['first', 'inputs']);
/** Introspection: what GraphiQL and code generators ask for, answered from memory. */
const INTROSPECTION_FIELDS = new Set(['__schema', '__type']);

/**
 * One point per field; a list multiplies what is selected inside it by its length: `first`
 * (or the default page), the number of `inputs` of a batch, or a small constant. Introspection
 * (`__schema`, `__type` and all below them) costs nothing: it reads no data, and the depth and
 * token limits bound it still. (GraphiQL's own introspection query would cost 51,853.)
 */
const estimateCost: ComplexityEstimator = ({ field, args, childComplexity }) => {
  if (INTROSPECTION_FIELDS.has(field.name)) return 0;
  if (typeof args['first'] === 'number') return 1 + Math.max(args['first'], 1) * childComplexity;
  if (Array.isArray(args['inputs'])) return 1 + args['inputs'].length * childComplexity;
  if (field.name in DEFAULT_FIRST) return 1 + DEFAULT_FIRST[field.name]! * childComplexity;
  const type = field.type.toString();
  if (type.endsWith('Connection!')) return 1 + DEFAULT_PAGE * childComplexity;
  // A connection's edges are its page: counted once, by the connection.
  if (field.name === 'edges') return 1 + childComplexity;
  if (type.includes('[')) return 1 + UNPAGED_LIST * childComplexity;
  return 1 + childComplexity;
};

function rejectWith(limit: string, max: number) {
  return [
    (context: ValidationContext | null, error: GraphQLError) =>
      context?.reportError(
        new LimitExceededError(limit, max, error.message.replace(/^Syntax Error: /, '')),
      ),
  ];
}

export function useQueryLimits(limits: QueryLimits): Plugin[] {
  const rules: ValidationRule[] = [
    maxDepthRule({
      n: limits.maxDepth,
      propagateOnRejection: false,
      onReject: rejectWith('depth', limits.maxDepth),
    }) as unknown as ValidationRule,
    maxAliasesRule({
      n: limits.maxAliases,
      propagateOnRejection: false,
      onReject: rejectWith('aliases', limits.maxAliases),
    }) as unknown as ValidationRule,
    maxDirectivesRule({
      n: limits.maxDirectives,
      propagateOnRejection: false,
      onReject: rejectWith('directives', limits.maxDirectives),
    }) as unknown as ValidationRule,
  ];
  // Introspection is bounded by a depth of its own (in fields); ordinary selections are not
  // counted twice.
  const introspectionMax = Math.max(limits.maxDepth, INTROSPECTION_MAX_DEPTH);
  const introspectionDepthRule = maxDepthRule({
    n: introspectionMax,
    ignoreIntrospection: false,
    flattenFragments: true,
    propagateOnRejection: false,
    onReject: rejectWith('depth', introspectionMax),
  }) as unknown as ValidationRule;
  rules.push((context) =>
    introspects(context.getDocument()) ? introspectionDepthRule(context) : {},
  );
  if (!limits.introspection) rules.push(NoSchemaIntrospectionCustomRule);

  /**
   * The cost may depend on variables (`first: $n`), so it is computed when the operation is
   * about to run, not as a validation rule: yoga caches validation per document, and a document
   * validated once with `$n: 1` would then pass with `$n: 500`. A document whose priced
   * arguments and directives hold no variable costs the same on every request: its cost is kept
   * with the document (yoga hands the same parsed document to every request of the same text).
   */
  const costs = new WeakMap<DocumentNode, Map<string, number>>();
  const costOf = (args: ExecutionArgs): number | null => {
    const operation = args.operationName ?? '';
    const cached = costs.get(args.document)?.get(operation);
    if (cached !== undefined) return cached;
    let cost: number;
    try {
      cost = getComplexity({
        estimators: [estimateCost],
        schema: args.schema,
        query: args.document,
        variables: (args.variableValues ?? {}) as Record<string, unknown>,
        operationName: args.operationName ?? undefined,
      });
    } catch {
      // Variables that do not fit the operation: execution reports that, with BAD_USER_INPUT.
      return null;
    }
    if (!costDependsOnVariables(args.document)) {
      let perOperation = costs.get(args.document);
      if (!perOperation) costs.set(args.document, (perOperation = new Map()));
      perOperation.set(operation, cost);
    }
    return cost;
  };

  const costError = (args: ExecutionArgs): LimitExceededError | null => {
    const cost = costOf(args);
    if (cost === null || cost <= limits.maxCost) return null;
    return new LimitExceededError(
      'cost',
      limits.maxCost,
      `Query cost limit of ${limits.maxCost} exceeded, found ${cost}: ask for smaller pages ` +
        '(`first`) or fewer nested lists.',
    );
  };

  const plugins: Plugin[] = [
    {
      onValidate({ addValidationRule }) {
        for (const rule of rules) addValidationRule(rule);
      },
      onExecute({ args, setResultAndStopExecution }) {
        const error = costError(args);
        if (error) setResultAndStopExecution({ errors: [error] });
      },
      onSubscribe({ args, setResultAndStopExecution }) {
        const error = costError(args);
        if (error) setResultAndStopExecution({ errors: [error] });
      },
    },
  ];
  // Without introspection, "Did you mean …?" would still reveal the schema field by field.
  if (!limits.introspection) plugins.push(blockFieldSuggestionsPlugin() as unknown as Plugin);
  return plugins;
}

/** Whether the document selects `__schema` or `__type` anywhere. */
function introspects(document: DocumentNode): boolean {
  let found = false;
  visit(document, {
    Field(node) {
      if (INTROSPECTION_FIELDS.has(node.name.value)) found = true;
    },
  });
  return found;
}

/**
 * Whether a variable can change the document's cost: one in a priced argument (`first: $n`,
 * `inputs: $batch` or `inputs: [$a, $b]`), or in any directive (`@include(if: $x)` drops a
 * selection from the cost).
 */
function costDependsOnVariables(document: DocumentNode): boolean {
  let depends = false;
  visit(document, {
    Field(node) {
      if (node.arguments?.some((a) => PRICED_ARGUMENTS.has(a.name.value) && holdsVariable(a.value)))
        depends = true;
    },
    Directive(node) {
      if (node.arguments?.some((a) => holdsVariable(a.value))) depends = true;
    },
  });
  return depends;
}

function holdsVariable(value: ValueNode): boolean {
  switch (value.kind) {
    case Kind.VARIABLE:
      return true;
    case Kind.LIST:
      return value.values.some(holdsVariable);
    case Kind.OBJECT:
      return value.fields.some((field) => holdsVariable(field.value));
    default:
      return false;
  }
}
