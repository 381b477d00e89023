import { pino, type Logger } from 'pino';
import { currentRequest } from './ops/request-context.js';

export type { Logger } from 'pino';

/** Structured JSON logs on stdout; a line written while serving a request carries its id. */
export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'runstate' },
    mixin: () => {
      const request = currentRequest();
      return request ? { requestId: request.requestId } : {};
    },
  });
}
