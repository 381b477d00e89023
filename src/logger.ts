import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

/**
 * Structured JSON logs on stdout. A line about a request names it (`requestId`), passed by the
 * code that writes it (ops/request-context.ts).
 */
export function createLogger(level: string): Logger {
  return pino({ level, base: { service: 'runstate' } });
}
