/** A deadline on work whose promise may never settle (a query after the database went away). */
export class TimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TimeoutError';
  }
}

/**
 * `work`, or a TimeoutError once `ms` passed; `onTimeout` runs then (to mark the work
 * abandoned). The work itself is left to settle, unobserved.
 */
export function withTimeout<T>(
  work: Promise<T>,
  ms: number,
  what = 'the work',
  onTimeout?: () => void,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout?.();
      reject(new TimeoutError(`${what} did not end within ${ms} ms`));
    }, ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
