import { describe, expect, it } from 'vitest';
import { SubscriptionOverflowError } from '../../src/errors.js';
import { createEventHub } from '../../src/events/event-hub.js';

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
