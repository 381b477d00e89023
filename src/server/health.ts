import type { ServerResponse } from 'node:http';
import { pingDatabase, type Database } from '../db/client.js';
import { listPendingMigrations } from '../db/migrations.js';
import type { ChangeLogTail, TailStatus } from '../changelog/change-log-tail.js';
import type { Metrics } from '../ops/metrics.js';
import { sendJson } from './respond.js';
import { TimeoutError, withTimeout } from '../ops/timeout.js';

/** A wait of the change-log tail shorter than this is business as usual (concurrent writers). */
const TAIL_WAIT_REPORTED_MS = 1000;

/** How long one readiness check may take before it counts as failed. */
const CHECK_TIMEOUT_MS = 2000;

export interface HealthEndpoints {
  /** /ready: 200 when this instance can serve (or serves degraded), else 503; each check's state. */
  answerReady(res: ServerResponse): Promise<void>;
  /** /metrics: the Prometheus exposition. */
  answerMetrics(res: ServerResponse): Promise<void>;
}

export function createHealthEndpoints(deps: {
  database: Database;
  tail: ChangeLogTail;
  metrics: Metrics;
  isDraining: () => boolean;
}): HealthEndpoints {
  const { database, tail, metrics } = deps;
  let migrationsApplied = false;

  return {
    async answerReady(res) {
      const checks: Record<string, string> = {};
      const attempt = async (name: string, check: () => Promise<string>) => {
        try {
          checks[name] = await withTimeout(check(), CHECK_TIMEOUT_MS, `the ${name} check`);
        } catch (error) {
          checks[name] = error instanceof TimeoutError ? 'timed out' : 'unreachable';
        }
      };
      await attempt('database', async () =>
        (await pingDatabase(database.db)) ? 'ok' : 'unreachable',
      );
      await attempt('migrations', async () => {
        // Once applied, they stay applied: ask the database only until then.
        if (!migrationsApplied) {
          const pending = await listPendingMigrations(database.db);
          migrationsApplied = pending.length === 0;
          if (!migrationsApplied) return `${pending.length} pending`;
        }
        return 'ok';
      });
      const tailState = describeTail(tail.status());
      checks['changeLogTail'] = tailState.check;
      checks['accepting'] = deps.isDraining() ? 'draining' : 'ok';
      // A tail waiting for someone's open transaction degrades live delivery on every instance
      // alike: say so, but stay in rotation (writes and reads are served; see change-log-tail.ts).
      const ready = Object.entries(checks).every(
        ([name, state]) => state === 'ok' || (name === 'changeLogTail' && tailState.degraded),
      );
      const status = !ready ? 'not ready' : tailState.degraded ? 'degraded' : 'ready';
      sendJson(res, ready ? 200 : 503, { status, checks });
    },
    async answerMetrics(res) {
      const { contentType, body } = await metrics.render();
      res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' });
      res.end(body);
    },
  };
}

/** How long the tail has waited for open writers of status changes, in seconds (0: it does not). */
export function tailWaitSeconds(status: TailStatus): number {
  return 'since' in status ? (Date.now() - status.since) / 1000 : 0;
}

/** /ready's word on the change-log tail, and whether it only degrades the instance. */
function describeTail(status: TailStatus): { check: string; degraded: boolean } {
  if (!('since' in status)) return { check: status.state, degraded: false };
  const waited = Date.now() - status.since;
  const pids = status.pids.length > 0 ? status.pids.join(', ') : 'a prepared transaction';
  const what = `waiting ${waited} ms for pid ${pids} (open transactions that wrote status changes)`;
  if (status.state === 'starting') return { check: `starting: ${what}`, degraded: false };
  if (waited < TAIL_WAIT_REPORTED_MS) return { check: 'ok', degraded: false };
  return { check: what, degraded: true };
}
