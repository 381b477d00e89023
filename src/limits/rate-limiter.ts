/**
 * A token bucket per key (an API token): `perSecond` refill, up to `burst` saved up. In memory,
 * so each instance limits on its own: behind a load balancer a token gets the limit once per
 * instance.
 */
export interface RateLimiter {
  /** Take `cost` from the key's bucket: 0 when allowed, else the seconds until it would be. */
  take(key: string, cost?: number): number;
}

export function createRateLimiter(options: { perSecond: number; burst: number }): RateLimiter {
  const { perSecond, burst } = options;
  const buckets = new Map<string, { tokens: number; at: number }>();

  function prune(now: number) {
    // Full buckets carry no information: forget them so idle keys do not pile up.
    for (const [key, bucket] of buckets) {
      if (bucket.tokens + ((now - bucket.at) / 1000) * perSecond >= burst) buckets.delete(key);
    }
  }

  return {
    take(key, cost = 1) {
      if (perSecond <= 0) return 0;
      const now = Date.now();
      if (buckets.size > 10_000) prune(now);
      const bucket = buckets.get(key) ?? { tokens: burst, at: now };
      const tokens = Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * perSecond);
      // A batch larger than the burst may still run, on a full bucket, emptying it.
      const charge = Math.min(cost, burst);
      if (tokens < charge) {
        buckets.set(key, { tokens, at: now });
        return Math.max(1, Math.ceil((charge - tokens) / perSecond));
      }
      buckets.set(key, { tokens: tokens - charge, at: now });
      return 0;
    },
  };
}
