import {
  createSourceEventStream,
  execute,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { GraphQLContext } from './context.js';

/**
 * Subscriptions execute each event once per subscription *shape*, not once per subscriber.
 *
 * A thousand dashboards subscribed to `statusChanged { runId to }` all receive the same change
 * object from the event hub; executing the same selection on it a thousand times gives a
 * thousand equal results. Here the result is computed for the first subscriber of a shape and
 * shared with the others: the shape is the document, the operation, the variables, and what the
 * token may see (its projects: a nested `run { upstreams }` answers differently per scope).
 * Results are kept per event object (a WeakMap), so they go with the event.
 */
export function useSharedSubscriptionExecution(): Plugin {
  const documentIds = new WeakMap<DocumentNode, number>();
  let nextDocumentId = 0;
  const results = new WeakMap<object, Map<string, Promise<ExecutionResult>>>();

  function shapeOf(args: ExecutionArgs): string {
    let documentId = documentIds.get(args.document);
    if (documentId === undefined) documentIds.set(args.document, (documentId = nextDocumentId++));
    const context = args.contextValue as Partial<GraphQLContext> | undefined;
    return JSON.stringify([
      documentId,
      args.operationName ?? null,
      args.variableValues ?? null,
      context?.principal?.projects ?? null,
    ]);
  }

  function executeShared(args: ExecutionArgs, shape: string, event: unknown) {
    const run = () => Promise.resolve(execute({ ...args, rootValue: event }));
    if (typeof event !== 'object' || event === null) return run();
    let byShape = results.get(event);
    if (!byShape) results.set(event, (byShape = new Map()));
    let result = byShape.get(shape);
    if (!result) byShape.set(shape, (result = run()));
    return result;
  }

  return {
    onSubscribe({ setSubscribeFn }) {
      setSubscribeFn(async (args: ExecutionArgs) => {
        const stream = await createSourceEventStream(args);
        if (!(Symbol.asyncIterator in stream)) return stream as ExecutionResult;
        const source = stream as AsyncIterableIterator<unknown>;
        const shape = shapeOf(args);
        // Promise reactions rather than an async function: this runs for every event of every
        // subscriber.
        const toItem = (value: ExecutionResult) => ({ value, done: false as const });
        const mapped: AsyncIterableIterator<ExecutionResult> = {
          next() {
            return source
              .next()
              .then((item) =>
                item.done
                  ? { value: undefined, done: true as const }
                  : executeShared(args, shape, item.value).then(toItem),
              );
          },
          async return() {
            await source.return?.();
            return { value: undefined, done: true };
          },
          async throw(error?: unknown) {
            await source.return?.();
            throw error;
          },
          [Symbol.asyncIterator]() {
            return mapped;
          },
        };
        return mapped;
      });
    },
  };
}
