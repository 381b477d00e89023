import type { ExecutionResult } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { noteRequestOf, requestIdIn } from '../ops/request-context.js';

/**
 * The errors of an operation's answer are noted with its request id before yoga masks them, so
 * the line yoga logs for an unexpected one names the request (server/yoga.ts `logging.error`).
 * A subscription's start is noted here; an error ending its stream is noted where it is masked
 * (shared-subscription-execution.ts); the answers to its events are not: each is executed once
 * for all subscribers asking the same.
 */
export function useRequestIdsOnErrors(): Plugin {
  const note = (errors: ExecutionResult['errors'], context: unknown) => {
    if (!errors?.length) return;
    const requestId = requestIdIn(context);
    for (const error of errors) noteRequestOf(error, requestId);
  };
  return {
    onExecute: ({ args }) => ({
      onExecuteDone: ({ result }) => {
        if (!(Symbol.asyncIterator in result)) note(result.errors, args.contextValue);
      },
    }),
    onSubscribe: ({ args }) => ({
      onSubscribeResult: ({ result }) => {
        if (!(Symbol.asyncIterator in result)) note(result.errors, args.contextValue);
      },
    }),
  };
}
