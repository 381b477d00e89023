import type { Logger } from '../logger.js';
import { withTimeout } from '../ops/timeout.js';
import type { RunService } from './run-service.js';

/**
 * The reaper inside every instance: every `intervalMs` it moves runs past a deadline
 * (RunService.reapOverdueRuns), then folds the change log into the run counts, then lets
 * retention delete what has expired. Several instances may reap at once; each decision is a
 * compare-and-set, so it is taken exactly once (retention takes turns by an advisory lock).
 */
export interface Reaper {
  start(): void;
  stop(): Promise<void>;
}

/** A reaper pass that takes longer is given up (and logged); the next one starts. */
const PASS_TIMEOUT_MS = 30_000;

export function createReaper(deps: {
  runs: RunService;
  /** Folds the change log into the run counts (run-counts.ts); after each pass. */
  foldCounts?: () => Promise<number>;
  /** Retention (retention.ts: it paces itself); after each fold. */
  retention?: () => Promise<void>;
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
      const work = runs.reapOverdueRuns({ stopTimeoutSeconds }).then(async (moved) => {
        if (moved > 0) logger.info({ moved }, 'reaper moved overdue runs');
        await deps.foldCounts?.();
        await deps.retention?.();
      });
      // A pass whose query never answers (postgres.js can leave one unsettled after the
      // database restarted: see change-log-tail.ts) must not stop every later pass. A late
      // answer does no harm: each move is a compare-and-set, each fold moves its position.
      pass = withTimeout(work, PASS_TIMEOUT_MS, 'the reaper pass')
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
