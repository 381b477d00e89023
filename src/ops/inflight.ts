/**
 * Counts work that must finish before the process stops (requests, mutations), and lets a
 * shutdown wait until none is left.
 */
export function createInflight() {
  let count = 0;
  let waiters: (() => void)[] = [];
  return {
    begin(): void {
      count++;
    },
    end(): void {
      count = Math.max(0, count - 1);
      if (count === 0) {
        for (const wake of waiters) wake();
        waiters = [];
      }
    },
    size(): number {
      return count;
    },
    /** Resolves with true once nothing is in flight, or false when `timeoutMs` passed first. */
    settled(timeoutMs: number): Promise<boolean> {
      if (count === 0) return Promise.resolve(true);
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          waiters = waiters.filter((w) => w !== wake);
          resolve(false);
        }, timeoutMs);
        const wake = () => {
          clearTimeout(timer);
          resolve(true);
        };
        waiters.push(wake);
      });
    },
  };
}

export type Inflight = ReturnType<typeof createInflight>;
