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
import type { RunRow, StatusChangeRow } from '../db/schema.js';
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
 *
 * A batch of such changes, each to another run (transitionRuns from a worker or a scheduler), is
 * one statement too, all or none: no change of it causes anything that another of it could
 * see, so applying them together is applying them in turn.
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
 * A request's values, by name, with their SQL types; in this order they are the one-request
 * statement's parameters ($1, $2, …), and by these names the columns of a batch's rows.
 */
const TYPES = {
  id: 'uuid',
  to: 'run_status',
  retry: 'int',
  at: 'timestamptz',
  reason: 'text',
  runOutcome: 'text',
  runExitCode: 'int',
  starts: 'boolean',
  done: 'boolean',
  message: 'text',
  stopping: 'boolean',
  from: 'run_status[]',
  projects: 'text[]',
  attempt: 'int',
  expectedStatus: 'run_status',
  expectedVersion: 'int',
  failed: 'boolean',
  outcome: 'text',
  exitCode: 'int',
  meta: 'jsonb',
  actor: 'text',
} as const;

type ValueName = keyof typeof TYPES;
const VALUE_NAMES = Object.keys(TYPES) as ValueName[];

/** Where the statement reads each value: a parameter (one request) or a column of `q` (a batch). */
type ValueSource = Record<ValueName, string>;
const PARAMETERS = Object.fromEntries(
  VALUE_NAMES.map((name, i) => [name, `$${i + 1}::${TYPES[name]}`]),
) as ValueSource;
const COLUMNS = Object.fromEntries(VALUE_NAMES.map((name) => [name, `q."${name}"`])) as ValueSource;

function requestValues(request: TransitionRequest, actor: Actor): Record<ValueName, unknown> {
  const to = request.to;
  const done = isDone(to);
  return {
    id: request.id,
    to,
    retry: to === 'RETRYING' ? 1 : 0,
    at: request.at?.toISOString() ?? null,
    reason: request.reason,
    runOutcome: done ? (request.outcome ?? null) : null,
    runExitCode: done ? (request.exitCode ?? null) : null,
    starts: startsRunning(to),
    done,
    message: request.message,
    stopping: to === 'STOPPING',
    from: fromList(to),
    projects: actor.projects == null ? null : arrayLiteral(actor.projects),
    attempt: request.attempt,
    expectedStatus: request.expectedStatus,
    expectedVersion: request.expectedVersion,
    failed: to === 'FAILED',
    outcome: request.outcome ?? null,
    exitCode: request.exitCode ?? null,
    meta: request.meta ?? null,
    actor: actor.name,
  };
}

/** The new values of a moved run `r` (its row before the change). */
function setText(v: ValueSource): string {
  // When it happens: as reported, else now, never before the run's last change (changeTimeFor).
  const changeAt = `coalesce(${v.at}, greatest(date_trunc('milliseconds', now()), r.updated_at))`;
  return `
        status = ${v.to},
        version = r.version + 1,
        revision = r.revision + 1,
        attempt = r.attempt + ${v.retry},
        updated_at = ${changeAt},
        status_reason = ${v.reason},
        outcome = ${v.runOutcome},
        exit_code = ${v.runExitCode},
        started_at = CASE WHEN ${v.starts} AND r.started_at IS NULL THEN ${changeAt}
                          ELSE r.started_at END,
        finished_at = CASE WHEN ${v.done} THEN ${changeAt}
                           WHEN r.status = ANY('{${DONE.join(',')}}'::run_status[]) THEN NULL
                           ELSE r.finished_at END,
        stop_message = CASE WHEN ${v.done}
                              THEN coalesce(${v.message},
                                            CASE WHEN r.status = 'STOPPING' THEN r.stop_message END)
                            WHEN ${v.stopping} THEN ${v.message} END`;
}

/**
 * Whether run `r` (locked, as it is now) may take the request's change with nothing else to do:
 * a legal move, the caller's preconditions met, and no follower, rollup parent or retry.
 */
function applicableText(v: ValueSource): string {
  return `r.status = ANY(${v.from})
        AND (${v.projects} IS NULL OR r.project = ANY(${v.projects}))
        AND (${v.attempt} IS NULL OR r.attempt = ${v.attempt})
        AND (${v.expectedStatus} IS NULL OR r.status = ${v.expectedStatus})
        AND (${v.expectedVersion} IS NULL OR r.version = ${v.expectedVersion})
        AND r.followers = 0
        AND NOT (${v.failed} AND r.attempt <= r.max_retries AND r.status <> 'STOPPING')
        AND (${v.at} IS NULL OR ${v.at} >= r.updated_at)
        AND (r.parent_id IS NULL
             OR NOT EXISTS (SELECT 1 FROM runs p WHERE p.id = r.parent_id AND p.rollup))`;
}

/** The change-log row of each moved run `m`, with the request's values. */
function loggedText(v: ValueSource, from: string): string {
  return `
      INSERT INTO status_changes (tx_id, run_id, project, from_status, to_status, version, reason,
        message, outcome, exit_code, meta, attempt, at, forced, actor, parent_id)
      SELECT pg_current_xact_id(), m.id, m.project, m.from_status, m.status, m.version,
             ${v.reason}, ${v.message}, ${v.outcome}, ${v.exitCode}, ${v.meta},
             m.attempt, m.updated_at, false, ${v.actor}, m.parent_id
      ${from}
      RETURNING id, run_id, project, from_status, to_status, version, reason, message, outcome,
                exit_code, meta, attempt, at, forced, actor, parent_id`;
}

const notifyText = (parameter: number) =>
  `, pg_notify('${CHANGE_LOG_CHANNEL}', $${parameter}::text) IS NULL AS notified`;

/**
 * The statement, as fixed text with positional parameters: built once (with and without the
 * NOTIFY) and sent straight to the driver, prepared. drizzle's building of it from a template
 * cost more of the service's CPU per change than anything else of ours (issue 18's profile).
 */
function statementText(withNotify: boolean, withRun: boolean): string {
  const v = PARAMETERS;
  return `
    /* transitionDirect */
    WITH cur AS (
      SELECT id, status FROM runs WHERE id = ${v.id} FOR NO KEY UPDATE
    ),
    moved AS (
      UPDATE runs AS r SET ${setText(v)}
      FROM cur
      WHERE r.id = cur.id
        AND ${applicableText(v)}
      RETURNING ${withRun ? 'r.*' : LOGGED_FROM_RUN}, cur.status AS from_status
    ),
    logged AS (${loggedText(v, 'FROM moved AS m')}
    )
    SELECT l.*,
           ${withRun ? "(SELECT to_jsonb(m) - 'from_status' FROM moved AS m)" : 'NULL::jsonb'} AS run${
             withNotify ? notifyText(VALUE_NAMES.length + 1) : ''
           }
    FROM (VALUES (1)) AS one LEFT JOIN logged AS l ON true`;
}

/** What the change-log row takes from a moved run (loggedText), when nothing else is read. */
const LOGGED_FROM_RUN =
  'r.id, r.project, r.status, r.version, r.attempt, r.updated_at, r.parent_id';

/**
 * A batch of such changes, each to another run, in one statement: all of them or none. Every
 * run is locked first (parents first, then by id, as the full path locks), then each checked as
 * it is now; only if every request applies are the runs written and their changes logged, in
 * the batch's order ($1: the requests' values as JSON rows, each with its place n).
 *
 * The run ids follow as parameters of their own, one each ($2 … $size+1), for a batch of up to
 * SIZED_BATCH_MOST changes (a group of single changes, direct-group.ts, or a small
 * transitionRuns): PostgreSQL's estimates then do not depend on the values, so after five
 * executions it keeps one plan per session (a generic plan) instead of planning each one again.
 * With the ids as one array it planned every execution (pg_prepared_statements: custom_plans
 * only), a large share of its CPU per change for small batches. A larger batch sends the ids as
 * one array ($2), and the statement is planned for it. Either way the runs are found through
 * their primary key, whatever the table's statistics (batch-plans.test.ts).
 */
function batchStatementText(size: number | null, withNotify: boolean, withRun: boolean): string {
  const v = COLUMNS;
  const columns = VALUE_NAMES.map((name) => `"${name}" ${TYPES[name]}`).join(', ');
  const ids =
    size == null
      ? 'ANY($2::uuid[])'
      : `ANY(ARRAY[${Array.from({ length: size }, (_, i) => `$${i + 2}::uuid`).join(', ')}])`;
  const count = size == null ? 'jsonb_array_length($1::jsonb)' : String(size);
  return `
    /* transitionDirectBatch */
    WITH q AS (
      SELECT * FROM jsonb_to_recordset($1::jsonb) AS q(n int, ${columns})
    ),
    cur AS (
      SELECT * FROM runs WHERE id = ${ids} ORDER BY depth, id FOR NO KEY UPDATE
    ),
    ok AS (
      SELECT r.id FROM cur AS r JOIN q ON q.id = r.id WHERE ${applicableText(v)}
    ),
    moved AS (
      UPDATE runs AS r SET ${setText(v)}
      FROM q JOIN cur ON cur.id = q.id
      WHERE r.id = q.id AND r.id = ${ids}
        AND (SELECT count(*) FROM ok) = ${count}
      RETURNING q.n, ${withRun ? 'r.*' : LOGGED_FROM_RUN}, cur.status AS from_status
    ),
    logged AS (${loggedText(v, 'FROM moved AS m JOIN q ON q.n = m.n ORDER BY m.n')}
    )
    SELECT ${
      withRun
        ? "(SELECT jsonb_agg(to_jsonb(m) - 'from_status' - 'n' ORDER BY m.n) FROM moved AS m)"
        : 'NULL::jsonb'
    } AS runs,
           (SELECT jsonb_agg(to_jsonb(l) ORDER BY l.id) FROM logged AS l) AS changes${
             withNotify ? notifyText(size == null ? 3 : size + 2) : ''
           }`;
}

/** The most changes a batch statement takes with an id parameter each (batchStatementText). */
export const SIZED_BATCH_MOST = 32;

/**
 * Each statement with and without the NOTIFY, and with and without the moved runs as JSON: an
 * answer that does not ask for the run (a worker's rarely does) spares PostgreSQL turning a row
 * of 37 columns into JSON, about an eighth of its CPU per change (issue 18).
 */
const STATEMENTS = statementsOf(statementText);
/** Per size up to SIZED_BATCH_MOST (index: size), and for any larger batch (index 0). */
const BATCH_STATEMENTS = Array.from({ length: SIZED_BATCH_MOST + 1 }, (_, size) =>
  statementsOf((withNotify, withRun) =>
    batchStatementText(size === 0 ? null : size, withNotify, withRun),
  ),
);

function statementsOf(text: (withNotify: boolean, withRun: boolean) => string) {
  const variants = [false, true].map((withRun) => [text(false, withRun), text(true, withRun)]);
  return (notify: string | null, withRun: boolean) =>
    variants[withRun ? 1 : 0]![notify == null ? 0 : 1]!;
}

/** What a direct statement applied: each request's outcome, and the changes it logged. */
export interface DirectResult {
  outcomes: TransitionOutcome[];
  changes: StatusChangeRow[];
}

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
  /** Read the run as the change left it (false: the outcome has no run to read). */
  withRun = true,
): Promise<DirectResult | null> {
  const values = requestValues(request, actor);
  // A jsonb parameter goes as its text (drizzle has postgres.js pass text through as it is).
  const params = VALUE_NAMES.map((name) =>
    name === 'meta' && values.meta != null ? JSON.stringify(values.meta) : values[name],
  );
  if (notify != null) params.push(notify);
  const [row] = await queryText<RawStatusChange & { run: Record<string, unknown> | null }>(
    db,
    STATEMENTS(notify, withRun),
    params,
  );
  // A change is logged exactly when its run moved; its row's columns are null when it did not.
  if (row?.id == null || (withRun && !row.run)) return null;
  const change = mapStatusChangeRow(row);
  return { outcomes: [accepted(row.run, change)], changes: [change] };
}

/**
 * An accepted change; its run is decoded only if the answer asks for it (a worker's rarely does),
 * and is not there at all when the statement was told it would not be asked for.
 */
function accepted(raw: Record<string, unknown> | null, change: StatusChangeRow): TransitionOutcome {
  let run: RunRow | undefined;
  return {
    kind: 'accepted',
    get run() {
      if (raw === null)
        throw new Error('the run of a direct change was not read: nothing was to ask for it');
      return (run ??= readRunRow(raw));
    },
    change,
  };
}

/**
 * Apply a batch of common changes, each to another run, in one statement; null when any of them
 * needs the full path (nothing was written then, and the full path decides the whole batch).
 */
export async function applyDirectlyBatch(
  db: Db,
  requests: readonly TransitionRequest[],
  actor: Actor,
  /** A NOTIFY on the change log's channel sent with it (commit-signal.ts), or null. */
  notify: string | null = null,
  /** Read the runs as the changes left them (false: the outcomes have no run to read). */
  withRun = true,
): Promise<DirectResult | null> {
  const rows = requests.map((request, n) => ({ n, ...requestValues(request, actor) }));
  const ids = requests.map((r) => r.id);
  const sized = requests.length <= SIZED_BATCH_MOST;
  const params: unknown[] = [JSON.stringify(rows), ...(sized ? ids : [arrayLiteral(ids)])];
  if (notify != null) params.push(notify);
  const statements = BATCH_STATEMENTS[sized ? requests.length : 0]!;
  const [row] = await queryText<{
    runs: Record<string, unknown>[] | null;
    changes: RawStatusChange[] | null;
  }>(db, statements(notify, withRun), params);
  if (!row?.changes || row.changes.length !== requests.length || (withRun && !row.runs)) {
    return null;
  }
  const changes = row.changes.map(mapStatusChangeRow);
  const outcomes = changes.map((change, i) => accepted(row.runs?.[i] ?? null, change));
  return { outcomes, changes };
}
