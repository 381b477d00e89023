import { GraphQLError, parse, type DocumentNode, type ExecutionResult } from 'graphql';
import { createSchema, createYoga, maskError } from 'graphql-yoga';
import { describe, expect, it } from 'vitest';
import { useSharedSubscriptionExecution } from '../../src/graphql/shared-subscription-execution.js';
import { requestIdOfError } from '../../src/ops/request-context.js';

// The plugin answers subscription streams itself: each event is executed once per shape, and its
// errors are masked (and an unexpected one logged) once, not once per subscriber; an error that
// ends a stream is masked and named by its request, an abort passed on. Checked through yoga's
// own envelop, with yoga's masking on as the service has it.

/** Events pushed to every open stream; `fail` ends each stream with an error of its own. */
function createFeed() {
  const streams = new Set<{ push(event: object): void; fail(error: unknown): void }>();
  return {
    publish: (event: object) => streams.forEach((s) => s.push(event)),
    fail: (error: () => unknown) => streams.forEach((s) => s.fail(error())),
    subscribe(): AsyncIterableIterator<object> {
      const queue: object[] = [];
      let failure: unknown;
      let wake: (() => void) | null = null;
      const stream = {
        push: (event: object) => (queue.push(event), wake?.()),
        fail: (error: unknown) => ((failure = error), wake?.()),
      };
      streams.add(stream);
      const iterator: AsyncIterableIterator<object> = {
        async next() {
          while (queue.length === 0 && failure === undefined)
            await new Promise<void>((resolve) => (wake = resolve));
          if (queue.length > 0) return { value: queue.shift()!, done: false };
          throw failure;
        },
        async return() {
          streams.delete(stream);
          return { value: undefined, done: true };
        },
        [Symbol.asyncIterator]: () => iterator,
      };
      return iterator;
    },
  };
}

function setUp() {
  const feed = createFeed();
  /** What was masked, as the service logs it: one entry per unexpected error. */
  const masked: unknown[] = [];
  const mask = (error: unknown) => {
    const result = maskError(error, 'Unexpected error.', false);
    if (result !== error) masked.push(error);
    return result;
  };
  const yoga = createYoga<object, { requestId: string }>({
    schema: createSchema({
      typeDefs: /* GraphQL */ `
        type Query {
          ok: Boolean
        }
        type Tick {
          n: Int!
          broken: Int
          refused: Int
        }
        type Subscription {
          ticks: Tick!
        }
      `,
      resolvers: {
        Subscription: {
          ticks: { subscribe: () => feed.subscribe(), resolve: (event: unknown) => event },
        },
        Tick: {
          broken: () => {
            throw new Error('relation "runs" does not exist');
          },
          refused: () => {
            throw new GraphQLError('not yours', { extensions: { code: 'FORBIDDEN' } });
          },
        },
      },
    }),
    maskedErrors: { isDev: false, maskError: (error) => mask(error) },
    logging: false,
    plugins: [useSharedSubscriptionExecution({ mask })],
  });

  // One document per query text, as yoga's parser cache hands the service.
  const documents = new Map<string, DocumentNode>();
  async function subscribe(query: string, requestId: string) {
    const { subscribe, schema, contextFactory } = yoga.getEnveloped({ requestId });
    if (!documents.has(query)) documents.set(query, parse(query));
    const result = (await subscribe({
      schema,
      document: documents.get(query)!,
      contextValue: await contextFactory(),
    })) as AsyncIterableIterator<ExecutionResult> | ExecutionResult;
    if (!(Symbol.asyncIterator in result)) throw new Error(JSON.stringify(result));
    return result;
  }
  return { feed, masked, subscribe };
}

describe('useSharedSubscriptionExecution', () => {
  it('masks an event’s unexpected error once for all subscribers of its shape', async () => {
    const { feed, masked, subscribe } = setUp();
    const query = 'subscription { ticks { n broken refused } }';
    const streams = await Promise.all([1, 2, 3].map((i) => subscribe(query, `sub-${i}`)));
    const answers = streams.map((s) => s.next());
    feed.publish({ n: 1 });
    const results = (await Promise.all(answers)).map((r) => r.value as ExecutionResult);
    for (const result of results) {
      expect(result.data).toEqual({ ticks: { n: 1, broken: null, refused: null } });
      expect(result.errors?.map((e) => [e.message, e.extensions?.code])).toEqual([
        ['Unexpected error.', 'INTERNAL_SERVER_ERROR'],
        ['not yours', 'FORBIDDEN'],
      ]);
    }
    // One execution, one masking, one log line: not one per subscriber.
    expect(masked).toHaveLength(1);
    expect(String(masked[0])).toContain('relation "runs" does not exist');
    expect(new Set(results).size).toBe(1);
    await Promise.all(streams.map((s) => s.return?.()));
  });

  it('masks an error that ends a stream, named by the request of each subscriber', async () => {
    const { feed, masked, subscribe } = setUp();
    const streams = await Promise.all(
      ['end-1', 'end-2'].map((id) => subscribe('subscription { ticks { n } }', id)),
    );
    const answers = streams.map((s) =>
      s.next().then(
        () => null,
        (error: unknown) => error,
      ),
    );
    feed.fail(() => new Error('connection terminated unexpectedly'));
    const errors = await Promise.all(answers);
    for (const error of errors) expect((error as Error).message).toBe('Unexpected error.');
    expect(masked.map((error) => requestIdOfError(error)).sort()).toEqual(['end-1', 'end-2']);
  });

  it('passes an abort on as it is', async () => {
    const { feed, masked, subscribe } = setUp();
    const stream = await subscribe('subscription { ticks { n } }', 'abort-1');
    const answer = stream.next().then(
      () => null,
      (error: unknown) => error,
    );
    const abort = new DOMException('The operation was aborted', 'AbortError');
    feed.fail(() => abort);
    expect(await answer).toBe(abort);
    expect(masked).toHaveLength(0);
  });
});
