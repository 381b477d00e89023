import { SubscriptionOverflowError } from '../errors.js';

/**
 * In-process fan-out of committed events to subscribers, keyed by topic and key (a run id, or `*`
 * for a global topic). Subscribing registers at once, so nothing published after `subscribe()`
 * returns is missed, even before the first `next()`. Each subscriber has a bounded buffer: a
 * subscriber that falls further behind is closed with SubscriptionOverflowError instead of
 * growing server memory.
 */
export interface EventHub<Topics extends Record<string, unknown>> {
  publish<K extends keyof Topics & string>(topic: K, key: string, payload: Topics[K]): void;
  /**
   * Events of (topic, key) published from now on, in publish order; with several keys, those of
   * any of them (each event once, as long as it is published under one of them only). Only
   * events passing `filter` are queued, so a narrow subscriber's buffer is not filled by
   * traffic it never sees.
   */
  subscribe<K extends keyof Topics & string>(
    topic: K,
    key: string | readonly string[],
    options?: { bufferSize?: number; filter?: (payload: Topics[K]) => boolean },
  ): AsyncIterableIterator<Topics[K]>;
  /** Whether anyone listens on (topic, key); lets publishers skip building unused payloads. */
  hasSubscribers(topic: keyof Topics & string, key: string): boolean;
  /** Number of open subscriptions. */
  size(): number;
  /** End every subscription (server shutdown); with `error`, each ends with it instead. */
  closeAll(error?: Error): void;
}

export const DEFAULT_SUBSCRIBER_BUFFER = 10_000;

interface Subscriber {
  push(payload: unknown): void;
  end(error?: Error): void;
}

export interface EventHubOptions<Topics> {
  bufferSize?: number;
  /**
   * For topics whose payloads are snapshots of a changing thing (a run): its revision. A
   * payload older than the last one published on the same (topic, key) is dropped, so
   * snapshots read at different moments never reach a subscriber out of order. An equal one
   * passes: the same state can be news (a run's new measurements do not change its row).
   */
  revisionOf?: { [K in keyof Topics]?: (payload: Topics[K]) => number };
}

export function createEventHub<Topics extends Record<string, unknown>>(
  options: EventHubOptions<Topics> = {},
): EventHub<Topics> {
  const defaultLimit = options.bufferSize ?? DEFAULT_SUBSCRIBER_BUFFER;
  /** Last revision published per channel, kept while the channel has subscribers. */
  const lastRevision = new Map<string, number>();
  const subscribers = new Map<string, Set<Subscriber>>();
  const channel = (topic: string, key: string) => `${topic}\u0000${key}`;

  function remove(name: string, subscriber: Subscriber) {
    const set = subscribers.get(name);
    if (!set) return;
    set.delete(subscriber);
    if (set.size === 0) {
      subscribers.delete(name);
      lastRevision.delete(name);
    }
  }

  return {
    publish(topic, key, payload) {
      const name = channel(topic, key);
      const set = subscribers.get(name);
      if (!set) return;
      const revisionOf = options.revisionOf?.[topic];
      if (revisionOf) {
        const revision = revisionOf(payload);
        if (revision < (lastRevision.get(name) ?? -Infinity)) return;
        lastRevision.set(name, revision);
      }
      // A subscriber removed while iterating (overflow) is simply skipped: Set iteration allows it.
      for (const subscriber of set) subscriber.push(payload);
    },

    subscribe(topic, key, options) {
      const names = (typeof key === 'string' ? [key] : [...new Set(key)]).map((k) =>
        channel(topic, k),
      );
      const limit = options?.bufferSize ?? defaultLimit;
      const keep = options?.filter as ((payload: unknown) => boolean) | undefined;
      const queue: unknown[] = [];
      let waiting: {
        resolve: (result: IteratorResult<never>) => void;
        reject: (error: Error) => void;
      } | null = null;
      /** Hand a result to a pending next(), if there is one. */
      const settle = (settleWith: (w: NonNullable<typeof waiting>) => void): boolean => {
        if (!waiting) return false;
        const w = waiting;
        waiting = null;
        settleWith(w);
        return true;
      };
      let failure: Error | null = null;
      let done = false;

      const subscriber: Subscriber = {
        push(payload) {
          if (done || (keep && !keep(payload))) return;
          if (settle((w) => w.resolve({ value: payload as never, done: false }))) return;
          queue.push(payload);
          if (queue.length > limit) {
            queue.length = 0;
            failure = new SubscriptionOverflowError(limit);
            done = true;
            for (const name of names) remove(name, subscriber);
          }
        },
        end(error) {
          if (done) return;
          done = true;
          for (const name of names) remove(name, subscriber);
          if (error) {
            // Delivered after what is already queued, like an overflow.
            if (!settle((w) => w.reject(error))) failure = error;
            return;
          }
          settle((w) => w.resolve({ value: undefined as never, done: true }));
        },
      };

      for (const name of names) {
        let set = subscribers.get(name);
        if (!set) subscribers.set(name, (set = new Set()));
        set.add(subscriber);
      }

      const iterator: AsyncIterableIterator<Topics[typeof topic]> = {
        next() {
          if (queue.length > 0) {
            return Promise.resolve({ value: queue.shift() as Topics[typeof topic], done: false });
          }
          if (failure) {
            const error = failure;
            failure = null;
            return Promise.reject(error);
          }
          if (done) return Promise.resolve({ value: undefined, done: true });
          return new Promise((resolve, reject) => {
            waiting = { resolve, reject };
          });
        },
        return() {
          subscriber.end();
          queue.length = 0;
          failure = null;
          return Promise.resolve({ value: undefined, done: true });
        },
        throw(error?: unknown) {
          subscriber.end();
          queue.length = 0;
          return Promise.reject(error instanceof Error ? error : new Error(String(error)));
        },
        [Symbol.asyncIterator]() {
          return iterator;
        },
      };
      return iterator;
    },

    hasSubscribers(topic, key) {
      return subscribers.has(channel(topic, key));
    },

    size() {
      let total = 0;
      for (const set of subscribers.values()) total += set.size;
      return total;
    },

    closeAll(error) {
      for (const set of [...subscribers.values()]) for (const s of [...set]) s.end(error);
    },
  };
}
