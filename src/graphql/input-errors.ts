import { GraphQLError, type ExecutionResult } from 'graphql';
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
  if (at) return at[2];
  const whole = /^Variable "\$([^"]+)"/.exec(error.message);
  return whole?.[1];
}

function withCode(error: GraphQLError): GraphQLError {
  if (
    error.extensions['code'] !== undefined &&
    error.extensions['code'] !== 'GRAPHQL_VALIDATION_FAILED'
  ) {
    return error;
  }
  if (!isValueProblem(error)) return error;
  const field = fieldOf(error);
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
  setResult({ ...execution, errors: execution.errors.map(withCode) });
}

export function useInputErrorCodes(): Plugin {
  return {
    onValidate({ validateFn, setValidationFn }) {
      setValidationFn((...args) => validateFn(...args).map(withCode));
    },
    onExecute() {
      return { onExecuteDone: ({ result, setResult }) => mapResult(result, setResult) };
    },
    onSubscribe() {
      return { onSubscribeResult: ({ result, setResult }) => mapResult(result, setResult) };
    },
  };
}
