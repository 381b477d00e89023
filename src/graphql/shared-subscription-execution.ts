import {
  createSourceEventStream,
  execute,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  type GraphQLError,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { noteRequestOf, requestIdIn } from '../ops/request-context.js';
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
 *
 * The plugin answers a subscription's stream itself (envelop's `setResultAndStopExecution`), so
 * no plugin after it wraps the stream: envelop wraps it once per plugin hook on its events, for
 * every subscriber, and those wrappers (yoga's masking, its errors' handlers) were a fifth of
 * the CPU of delivering a change to a thousand subscribers (issue 18). What they did is done
 * here, once per shape: an event's errors are masked (and an unexpected one logged) by `mask`,
 * as yoga masks everything else; an error ending the stream (its source's, or one thrown
 * executing an event) is masked too, noted with the request id where there is one subscriber to
 * name; an abort is passed on as it is. It must therefore be the last plugin that hooks
 * subscriptions. A subscription that fails before it streams (a bad variable, a refused
 * subscribe) goes on through the plugins after it, and yoga's masking, as before.
 */
export function useSharedSubscriptionExecution(options: {
  /** What yoga's masking makes of an error (and logs when it masks it). */
  mask: (error: unknown) => Error;
}): Plugin {
  const { mask } = options;
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

  /** An event's answer with its errors masked (the errors of one execution, logged once). */
  const toItem = (value: ExecutionResult): IteratorResult<ExecutionResult> => ({
    value: value.errors?.length
      ? { ...value, errors: value.errors.map((error) => mask(error) as GraphQLError) }
      : value,
    done: false,
  });

  /**
   * An execution that failed (a bug: resolvers' errors are in its answer), masked once for all
   * its subscribers.
   */
  const maskAndThrow = (error: unknown): never => {
    throw mask(error);
  };

  /**
   * The event's item for this shape: executed by its first subscriber, the same object for the
   * others. A selection whose resolvers answer at once (the usual `{ runId to }`) is executed
   * synchronously and its item handed over as a value: a promise returned from a `then` callback
   * costs each subscriber two more microtasks and a promise per event.
   */
  function itemFor(args: ExecutionArgs, shape: string, event: unknown): SharedItem {
    const run = (): SharedItem => {
      const result = execute({ ...args, rootValue: event });
      return isPromise(result) ? result.then(toItem, maskAndThrow) : toItem(result);
    };
    if (typeof event !== 'object' || event === null) return run();
    let byShape = results.get(event);
    if (!byShape) results.set(event, (byShape = new Map()));
    let item = byShape.get(shape);
    if (!item) byShape.set(shape, (item = run()));
    return item;
  }

  return {
    async onSubscribe({ args, setSubscribeFn, setResultAndStopExecution }) {
      const stream = await createSourceEventStream(args);
      if (!(Symbol.asyncIterator in stream)) {
        // Not a stream: an answer with errors, which the plugins after this one see as before.
        setSubscribeFn(() => stream as ExecutionResult);
        return;
      }
      const source = stream as AsyncIterableIterator<unknown>;
      const shape = shapeOf(args);
      // Promise reactions rather than an async function: this runs for every event of every
      // subscriber.
      const onError = (error: unknown): never => {
        if (isAbortError(error)) throw error;
        noteRequestOf(error, requestIdIn(args.contextValue));
        throw mask(error);
      };
      const onItem = (item: IteratorResult<unknown>) => {
        try {
          return item.done ? DONE : itemFor(args, shape, item.value);
        } catch (error) {
          return onError(error);
        }
      };
      const mapped: AsyncIterableIterator<ExecutionResult> = {
        next() {
          return source.next().then(onItem, onError);
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
      setResultAndStopExecution(mapped);
    },
  };
}

type SharedItem = IteratorResult<ExecutionResult> | Promise<IteratorResult<ExecutionResult>>;

const DONE: IteratorResult<ExecutionResult> = { value: undefined, done: true };

/** An abort (yoga's test): passed on unmasked, as yoga passes it. */
function isAbortError(error: unknown): boolean {
  return (
    error instanceof DOMException && (error.name === 'AbortError' || error.name === 'TimeoutError')
  );
}

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}
