import { arrayLiteral, queryText, type Db } from '../db/client.js';
import {
  getStatusesAllowedInto,
  getStatusesInCategories,
  isDone,
  startsRunning,
  type RunStatus,
} from '../lifecycle/lifecycle.js';
import { mapStatusChangeRow, type RawStatusChange } from '../changelog/change-store.js';
import { CHANGE_LOG_CHANNEL } from '../changelog/commit-signal.js';
import type { TransitionRequest } from './policy.js';
import type { RunRow } from '../db/schema.js';
import { readRunRow } from './run-store.js';
import type { Actor, TransitionOutcome } from './transition-batch.js';

/**
 * The common status change in one statement, one round trip and one transaction: lock the run,
 * check the move and the caller's preconditions, write the run and its history row. It applies
 * exactly the rules of the full path (transition-batch.ts, policy.ts) for a change that causes
 * nothing else: the run has no followers (nothing waits for it), no rollup parent, no retry to
 * start, and the request carries no idempotency key, native name or force. Whatever the
 * statement does not apply (a refusal, a retry, a cascade, a same-status report) it leaves
 * untouched and the caller takes the full path, which decides it under the same lock. So the
 * guarantees are those of the full path; only the common case is cheaper.
 */

const DONE = getStatusesInCategories(['DONE']);
/** For each target: the statuses it may be entered from directly (never itself: a noop). */
const FROM = new Map<RunStatus, string>();

function fromList(to: RunStatus): string {
  let list = FROM.get(to);
  if (list === undefined) {
    list = `{${getStatusesAllowedInto(to)
      .filter((s) => s !== to)
      .join(',')}}`;
    FROM.set(to, list);
  }
  return list;
}

/** Whether a request may try the one-statement path at all. */
export function mayApplyDirectly(request: TransitionRequest): boolean {
  return (
    request.native == null &&
    request.resolveTo == null &&
    request.force !== true &&
    request.idempotencyKey == null &&
    request.stopsChildren !== true &&
    request.expectedRevision == null
  );
}

/**
 * The statement, as fixed text with positional parameters: built once (with and without the
 * NOTIFY) and sent straight to the driver, prepared. drizzle's building of it from a template
 * cost more of the service's CPU per change than anything else of ours (issue 18's profile).
 */
function statementText(withNotify: boolean): string {
  // When it happens: as reported, else now, never before the run's last change (changeTimeFor).
  const changeAt = `coalesce($4::timestamptz, greatest(date_trunc('milliseconds', now()), r.updated_at))`;
  return `
    /* transitionDirect */
    WITH cur AS (
      SELECT id, status FROM runs WHERE id = $1::uuid FOR NO KEY UPDATE
    ),
    moved AS (
      UPDATE runs AS r SET
        status = $2::run_status,
        version = r.version + 1,
        revision = r.revision + 1,
        attempt = r.attempt + $3::int,
        updated_at = ${changeAt},
        status_reason = $5::text,
        outcome = $6::text,
        exit_code = $7::int,
        started_at = CASE WHEN $8::boolean AND r.started_at IS NULL THEN ${changeAt}
                          ELSE r.started_at END,
        finished_at = CASE WHEN $9::boolean THEN ${changeAt}
                           WHEN r.status = ANY('{${DONE.join(',')}}'::run_status[]) THEN NULL
                           ELSE r.finished_at END,
        stop_message = CASE WHEN $9::boolean
                              THEN coalesce($10::text,
                                            CASE WHEN r.status = 'STOPPING' THEN r.stop_message END)
                            WHEN $11::boolean THEN $10::text END
      FROM cur
      WHERE r.id = cur.id
        AND r.status = ANY($12::run_status[])
        AND ($13::text[] IS NULL OR r.project = ANY($13::text[]))
        AND ($14::int IS NULL OR r.attempt = $14::int)
        AND ($15::run_status IS NULL OR r.status = $15::run_status)
        AND ($16::int IS NULL OR r.version = $16::int)
        AND r.followers = 0
        AND NOT ($17::boolean AND r.attempt <= r.max_retries AND r.status <> 'STOPPING')
        AND ($4::timestamptz IS NULL OR $4::timestamptz >= r.updated_at)
        AND (r.parent_id IS NULL
             OR NOT EXISTS (SELECT 1 FROM runs p WHERE p.id = r.parent_id AND p.rollup))
      RETURNING r.*, cur.status AS from_status
    ),
    logged AS (
      INSERT INTO status_changes (tx_id, run_id, project, from_status, to_status, version, reason,
        message, outcome, exit_code, meta, attempt, at, forced, actor, parent_id)
      SELECT pg_current_xact_id(), m.id, m.project, m.from_status, m.status, m.version,
             $5::text, $10::text, $18::text, $19::int, $20::jsonb,
             m.attempt, m.updated_at, false, $21::text, m.parent_id
      FROM moved AS m
      RETURNING id, run_id, project, from_status, to_status, version, reason, message, outcome,
                exit_code, meta, attempt, at, forced, actor, parent_id
    )
    SELECT (SELECT to_jsonb(m) - 'from_status' FROM moved AS m) AS run,
           (SELECT to_jsonb(l) FROM logged AS l) AS change${
             withNotify ? `, pg_notify('${CHANGE_LOG_CHANNEL}', $22::text) IS NULL AS notified` : ''
           }`;
}

const STATEMENT = statementText(false);
const STATEMENT_WITH_NOTIFY = statementText(true);

/**
 * Apply `request` in one statement if it is the common case; null when the full path must
 * decide it (nothing was written then).
 */
export async function applyDirectly(
  db: Db,
  request: TransitionRequest,
  actor: Actor,
  /** A NOTIFY on the change log's channel sent with it (commit-signal.ts), or null. */
  notify: string | null = null,
): Promise<TransitionOutcome | null> {
  const to = request.to;
  const done = isDone(to);
  const params: unknown[] = [
    request.id,
    to,
    to === 'RETRYING' ? 1 : 0,
    request.at?.toISOString() ?? null,
    request.reason,
    done ? (request.outcome ?? null) : null,
    done ? (request.exitCode ?? null) : null,
    startsRunning(to),
    done,
    request.message,
    to === 'STOPPING',
    fromList(to),
    actor.projects == null ? null : arrayLiteral(actor.projects),
    request.attempt,
    request.expectedStatus,
    request.expectedVersion,
    to === 'FAILED',
    request.outcome ?? null,
    request.exitCode ?? null,
    request.meta == null ? null : JSON.stringify(request.meta),
    actor.name,
  ];
  if (notify != null) params.push(notify);
  const [row] = await queryText<{ run: Record<string, unknown> | null; change: unknown }>(
    db,
    notify == null ? STATEMENT : STATEMENT_WITH_NOTIFY,
    params,
  );
  if (!row?.run || !row.change) return null;
  const change = mapStatusChangeRow(row.change as RawStatusChange);
  // The run is decoded only if the answer asks for it: a worker's report rarely does.
  const raw = row.run;
  let run: RunRow | undefined;
  return {
    kind: 'accepted',
    get run() {
      return (run ??= readRunRow(raw));
    },
    change,
  };
}
