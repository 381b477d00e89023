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
  const results = new WeakMap<object, Map<string, SharedItem>>();

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

  /**
   * The event's item for this shape: executed by its first subscriber, the same object for the
   * others. A selection whose resolvers answer at once (the usual `{ runId to }`) is executed
   * synchronously and its item handed over as a value: a promise returned from a `then` callback
   * costs each subscriber two more microtasks and a promise per event.
   */
  function itemFor(args: ExecutionArgs, shape: string, event: unknown): SharedItem {
    const run = (): SharedItem => {
      const result = execute({ ...args, rootValue: event });
      return isPromise(result) ? result.then(toItem) : toItem(result);
    };
    if (typeof event !== 'object' || event === null) return run();
    let byShape = results.get(event);
    if (!byShape) results.set(event, (byShape = new Map()));
    let item = byShape.get(shape);
    if (!item) byShape.set(shape, (item = run()));
    return item;
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
        const onItem = (item: IteratorResult<unknown>) =>
          item.done ? DONE : itemFor(args, shape, item.value);
        const mapped: AsyncIterableIterator<ExecutionResult> = {
          next() {
            return source.next().then(onItem);
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

type SharedItem = IteratorResult<ExecutionResult> | Promise<IteratorResult<ExecutionResult>>;

const DONE: IteratorResult<ExecutionResult> = { value: undefined, done: true };
const toItem = (value: ExecutionResult): IteratorResult<ExecutionResult> => ({
  value,
  done: false,
});

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}
