import type { Logger } from '../logger.js';
import type { RunService } from './run-service.js';

/**
 * The reaper inside every instance: every `intervalMs` it moves runs past a deadline
 * (RunService.reapOverdueRuns), then folds the change log into the run counts. Several instances may reap at once; each decision is a
 * compare-and-set, so it is taken exactly once.
 */
export interface Reaper {
  start(): void;
  stop(): Promise<void>;
}

export function createReaper(deps: {
  runs: RunService;
  /** Folds the change log into the run counts (run-counts.ts); after each pass. */
  foldCounts?: () => Promise<number>;
  logger: Logger;
  intervalMs: number;
  stopTimeoutSeconds: number;
}): Reaper {
  const { runs, logger, intervalMs, stopTimeoutSeconds } = deps;
  let timer: NodeJS.Timeout | null = null;
  let pass: Promise<void> | null = null;
  let running = false;

  const schedule = () => {
    if (!running) return;
    timer = setTimeout(() => {
      pass = runs
        .reapOverdueRuns({ stopTimeoutSeconds })
        .then(async (moved) => {
          if (moved > 0) logger.info({ moved }, 'reaper moved overdue runs');
          await deps.foldCounts?.();
        })
        .catch((error: unknown) => logger.warn({ err: error }, 'reaper pass failed'))
        .finally(schedule);
    }, intervalMs);
    timer.unref();
  };

  return {
    start() {
      if (running) return;
      running = true;
      schedule();
    },
    async stop() {
      running = false;
      if (timer) clearTimeout(timer);
      await pass;
    },
  };
}
