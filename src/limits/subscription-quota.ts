/** Open subscriptions per key (an API token), on this instance. */
export interface SubscriptionQuota {
  readonly max: number;
  /** A slot for the key; null when it has `max` open already. Call the answer to free it. */
  acquire(key: string): (() => void) | null;
  count(key: string): number;
}

export function createSubscriptionQuota(max: number): SubscriptionQuota {
  const open = new Map<string, number>();
  return {
    max,
    acquire(key) {
      const current = open.get(key) ?? 0;
      if (current >= max) return null;
      open.set(key, current + 1);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        const left = (open.get(key) ?? 1) - 1;
        if (left <= 0) open.delete(key);
        else open.set(key, left);
      };
    },
    count: (key) => open.get(key) ?? 0,
  };
}
