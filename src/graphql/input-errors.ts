import {
  BREAK,
  GraphQLError,
  Kind,
  visit,
  type ASTNode,
  type DocumentNode,
  type ExecutionResult,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';

/**
 * graphql-js reports a wrong input value (an unknown enum value, a string where an Int belongs,
 * a missing required field, Infinity in a Float) without an error code: as a validation error
 * when it is written in the query, as a bare request error when it comes in variables. Clients
 * need one code for "your input is wrong", so these become BAD_USER_INPUT, with `field` set to
 * the input path when graphql-js names it.
 */

const VALUE_PROBLEMS = [
  /^Expected value of type /,
  /^Value ".*" does not exist in ".*" enum/,
  /^Enum ".*" cannot represent/,
  /^Field ".*" of required type ".*" was not provided/,
  /^Field ".*" is not defined by type /,
  /^(Int|Float|String|Boolean|ID|DateTime|JSON) cannot represent/,
  /^Variable ".*" got invalid value/,
  /^Variable ".*" of required type ".*" was not provided/,
  /^Variable ".*" of non-null type ".*" must not be null/,
  /^Argument ".*" of (required|non-null) type ".*" (was not provided|must not be null)/,
];

function isValueProblem(error: GraphQLError): boolean {
  return VALUE_PROBLEMS.some((pattern) => pattern.test(error.message));
}

/** `Variable "$input" got invalid value 1.5 at "input.progress"; …` → `input.progress`. */
function fieldOf(error: GraphQLError): string | undefined {
  const at = /^Variable "\$([^"]+)" got invalid value .*? at "([^"]+)"/.exec(error.message);
  const missing = /; Field "(\w+)" of required type/.exec(error.message);
  if (at) return missing ? `${at[2]}.${missing[1]}` : at[2];
  const top = /^Variable "\$([^"]+)" got invalid value/.exec(error.message);
  if (top && missing) return `${top[1]}.${missing[1]}`;
  const whole = /^Variable "\$([^"]+)"/.exec(error.message);
  return whole?.[1];
}

/**
 * The input path of a value written in the query, e.g. `input.to` for the `to` field of the
 * `input` argument, found by walking the document to the error's node.
 */
function literalFieldOf(document: DocumentNode, target: ASTNode): string | undefined {
  const stack: string[] = [];
  const kinds: Kind[] = [];
  let found: string | undefined;
  visit(document, {
    enter(node, key) {
      const inList = kinds.at(-1) === Kind.LIST;
      kinds.push(node.kind);
      if (node.kind === Kind.ARGUMENT || node.kind === Kind.OBJECT_FIELD)
        stack.push(`.${node.name.value}`);
      else if (inList && typeof key === 'number') stack.push(`[${key}]`);
      else stack.push('');
      if (node === target) {
        found = stack.join('').replace(/^\./, '');
        return BREAK;
      }
      return undefined;
    },
    leave() {
      stack.pop();
      kinds.pop();
    },
  });
  return found || undefined;
}

function withCode(error: GraphQLError, document?: DocumentNode): GraphQLError {
  if (
    error.extensions['code'] !== undefined &&
    error.extensions['code'] !== 'GRAPHQL_VALIDATION_FAILED'
  ) {
    return error;
  }
  if (!isValueProblem(error)) return error;
  const node = error.nodes?.[0];
  let field = fieldOf(error) ?? (document && node ? literalFieldOf(document, node) : undefined);
  // A missing required field is reported on the object that lacks it: name the field itself.
  const missing = /^Field "\w+\.(\w+)" of required type/.exec(error.message);
  if (field && missing) field = `${field}.${missing[1]}`;
  return new GraphQLError(error.message, {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    path: error.path,
    originalError: error.originalError,
    extensions: { ...error.extensions, code: 'BAD_USER_INPUT', ...(field ? { field } : {}) },
  });
}

function mapResult(result: unknown, setResult: (r: ExecutionResult) => void): void {
  if (!result || typeof result !== 'object' || Symbol.asyncIterator in result) return;
  const execution = result as ExecutionResult;
  if (!execution.errors?.length) return;
  setResult({ ...execution, errors: execution.errors.map((error) => withCode(error)) });
}

export function useInputErrorCodes(): Plugin {
  return {
    onValidate({ validateFn, setValidationFn }) {
      setValidationFn((...args) =>
        validateFn(...args).map((error: GraphQLError) => withCode(error, args[1])),
      );
    },
    onExecute() {
      return { onExecuteDone: ({ result, setResult }) => mapResult(result, setResult) };
    },
    onSubscribe() {
      return { onSubscribeResult: ({ result, setResult }) => mapResult(result, setResult) };
    },
  };
}
