import { getPgErrorCode } from '../errors.js';

const DEADLOCK_DETECTED = '40P01';

/**
 * Run a transaction again when PostgreSQL broke a lock cycle by failing it (deadlock_detected),
 * up to four times.
 */
export async function retryOnDeadlock<T>(work: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if (attempt >= 4 || getPgErrorCode(error) !== DEADLOCK_DETECTED) throw error;
    }
  }
}
