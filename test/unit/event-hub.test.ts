import { describe, expect, it } from 'vitest';
import { SubscriptionOverflowError } from '../../src/errors.js';
import { createEventHub } from '../../src/live/event-hub.js';
import { endWithRequest, filterEvents } from '../../src/live/terminal-error.js';

type Topics = { tick: number; other: string };

describe('event hub', () => {
  it('delivers, in order, what was published after subscribe() even before the first next()', async () => {
    const hub = createEventHub<Topics>();
    const sub = hub.subscribe('tick', 'a');
    hub.publish('tick', 'a', 1);
    hub.publish('tick', 'b', 99);
    hub.publish('tick', 'a', 2);
    expect(await sub.next()).toEqual({ value: 1, done: false });
    expect(await sub.next()).toEqual({ value: 2, done: false });
    const pending = sub.next();
    hub.publish('tick', 'a', 3);
    expect(await pending).toEqual({ value: 3, done: false });
  });

  it('closes a subscriber that falls behind its buffer with an actionable error, and frees it', async () => {
    const hub = createEventHub<Topics>();
    const slow = hub.subscribe('tick', 'a', { bufferSize: 3 });
    const fast = hub.subscribe('tick', 'a', { bufferSize: 100 });
    for (let i = 0; i < 5; i++) hub.publish('tick', 'a', i);
    await expect(slow.next()).rejects.toBeInstanceOf(SubscriptionOverflowError);
    expect(await slow.next()).toEqual({ value: undefined, done: true });
    expect(hub.size()).toBe(1);
    expect((await fast.next()).value).toBe(0);
  });

  it('queues only events passing the filter, so other traffic cannot overflow a subscriber', async () => {
    const hub = createEventHub<Topics>();
    const narrow = hub.subscribe('tick', 'a', { bufferSize: 2, filter: (n) => n % 100 === 0 });
    for (let i = 1; i <= 250; i++) hub.publish('tick', 'a', i);
    expect(await narrow.next()).toEqual({ value: 100, done: false });
    expect(await narrow.next()).toEqual({ value: 200, done: false });
    expect(hub.size()).toBe(1);
  });

  it('closeAll(error) ends each subscription with that error after what was queued', async () => {
    const hub = createEventHub<Topics>();
    const busy = hub.subscribe('tick', 'a');
    const idle = hub.subscribe('tick', 'b');
    hub.publish('tick', 'a', 1);
    const pending = idle.next();
    const error = new Error('stopping');
    hub.closeAll(error);
    await expect(pending).rejects.toBe(error);
    expect(await busy.next()).toEqual({ value: 1, done: false });
    await expect(busy.next()).rejects.toBe(error);
    expect(hub.size()).toBe(0);
  });

  it('drops a snapshot older than the last one published for the same key', async () => {
    type Snapshots = { run: { revision: number } };
    const hub = createEventHub<Snapshots>({
      revisionOf: { run: (r: unknown) => (r as { revision: number }).revision },
    });
    const sub = hub.subscribe('run', 'r1');
    for (const revision of [1, 3, 2, 3, 1, 4]) hub.publish('run', 'r1', { revision });
    const seen: number[] = [];
    for (let i = 0; i < 4; i++)
      seen.push(((await sub.next()).value as { revision: number }).revision);
    expect(seen).toEqual([1, 3, 3, 4]);
  });

  it('return() ends a pending next() and unregisters', async () => {
    const hub = createEventHub<Topics>();
    const sub = hub.subscribe('other', '*');
    expect(hub.hasSubscribers('other', '*')).toBe(true);
    const pending = sub.next();
    await sub.return!();
    expect(await pending).toEqual({ value: undefined, done: true });
    expect(hub.hasSubscribers('other', '*')).toBe(false);
    expect(hub.size()).toBe(0);
  });

  it('closeAll() ends every subscription', async () => {
    const hub = createEventHub<Topics>();
    const a = hub.subscribe('tick', 'x');
    const b = hub.subscribe('other', 'y');
    hub.closeAll();
    expect(await a.next()).toEqual({ value: undefined, done: true });
    expect(await b.next()).toEqual({ value: undefined, done: true });
    expect(hub.size()).toBe(0);
  });
});

describe('endWithRequest', () => {
  it('ends a subscription whose HTTP request is aborted, also when it already was', async () => {
    const hub = createEventHub<Topics>();
    const early = new AbortController();
    early.abort();
    endWithRequest(
      filterEvents(hub.subscribe('tick', 'a')),
      new Request('http://x', { signal: early.signal }),
    );
    const late = new AbortController();
    const sub = endWithRequest(
      filterEvents(hub.subscribe('tick', 'a')),
      new Request('http://x', { signal: late.signal }),
    );
    await waitFor(() => hub.size() === 1);
    const pending = sub.next();
    late.abort();
    expect(await pending).toEqual({ value: undefined, done: true });
    expect(hub.size()).toBe(0);
  });
});

async function waitFor(condition: () => boolean) {
  for (let i = 0; i < 100 && !condition(); i++)
    await new Promise((resolve) => setTimeout(resolve, 1));
  expect(condition()).toBe(true);
}

describe('a subscription to several keys', () => {
  it('receives the events of each of its keys, in publish order, and none of the others', async () => {
    const hub = createEventHub<{ t: number }>();
    const sub = hub.subscribe('t', ['a', 'b']);
    hub.publish('t', 'a', 1);
    hub.publish('t', 'c', 2);
    hub.publish('t', 'b', 3);
    hub.publish('t', 'a', 4);
    const got = [];
    for (let i = 0; i < 3; i++) got.push((await sub.next()).value);
    expect(got).toEqual([1, 3, 4]);
    expect(hub.hasSubscribers('t', 'b')).toBe(true);
    await sub.return!();
    expect(hub.hasSubscribers('t', 'a')).toBe(false);
    expect(hub.hasSubscribers('t', 'b')).toBe(false);
  });

  it('overflowing leaves every key it listened on', () => {
    const hub = createEventHub<{ t: number }>({ bufferSize: 2 });
    hub.subscribe('t', ['a', 'b']);
    for (let i = 0; i < 3; i++) hub.publish('t', 'a', i);
    expect(hub.hasSubscribers('t', 'a')).toBe(false);
    expect(hub.hasSubscribers('t', 'b')).toBe(false);
  });
});
