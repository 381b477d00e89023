import { sql } from 'drizzle-orm';
import {
  type AnyPgColumn,
  bigint,
  boolean,
  check,
  customType,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgEnum,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';
import { DIALECTS } from '../lifecycle/dialects.js';
import { RUN_STATUSES } from '../lifecycle/lifecycle.js';

/**
 * Tables of runstate. Migrations in drizzle/ are generated from this file by `npm run db:generate`.
 *
 * Timestamps keep millisecond precision: they are keyset-pagination keys, and a cursor carries them
 * through JavaScript `Date`, which has no microseconds.
 */

export const runStatusEnum = pgEnum('run_status', RUN_STATUSES);
export const dialectEnum = pgEnum('dialect', DIALECTS);

export const TRIGGER_POLICIES = [
  'ALL_SUCCEEDED',
  'ALL_FAILED',
  'ALL_DONE',
  'ONE_SUCCEEDED',
  'ONE_FAILED',
  'ONE_DONE',
] as const;
export type TriggerPolicy = (typeof TRIGGER_POLICIES)[number];
export const triggerPolicyEnum = pgEnum('trigger_policy', TRIGGER_POLICIES);

/** A PostgreSQL transaction id (`xid8`), kept on every change-log row; see status_changes. */
const xid8 = customType<{ data: string; driverData: string }>({
  dataType: () => 'xid8',
});

const ts = (name: string) => timestamp(name, { withTimezone: true, precision: 3, mode: 'date' });

export const runs = pgTable(
  'runs',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    project: text('project').notNull(),
    name: text('name'),
    tags: text('tags')
      .array()
      .notNull()
      .default(sql`'{}'::text[]`),
    meta: jsonb('meta').$type<Record<string, unknown>>(),
    status: runStatusEnum('status').notNull().default('CREATED'),
    /** +1 on every accepted status change; the creation is version 1. */
    version: integer('version').notNull().default(1),
    /** 1, then +1 per retry; a worker's change from an older attempt is refused (fencing). */
    attempt: integer('attempt').notNull().default(1),
    /** Failures turned into RETRYING while attempt <= maxRetries. */
    maxRetries: integer('max_retries').notNull().default(0),
    /**
     * +1 on every write to the row (status, progress, heartbeat): orders runUpdated snapshots
     * read at different moments, so a subscriber never gets an older one after a newer one.
     */
    revision: bigint('revision', { mode: 'number' }).notNull().default(1),
    /**
     * Runs created with this one as an upstream or an event-trigger ref (a count that only
     * grows). Read with the row's lock, it tells a transition whether its change can decide
     * other runs, without a query for the many runs nothing follows. Kept on the row, not
     * derived, so that a lock that waited for a createRun sees that run's count (a subquery
     * would read the statement's older snapshot).
     */
    followers: integer('followers').notNull().default(0),
    /** Over the run's upstreams (run_dependencies); null for a run without any. */
    trigger: triggerPolicyEnum('trigger'),
    /** An upstream SKIPPED makes this run SKIPPED instead of UPSTREAM_FAILED. */
    skipOnUpstreamSkip: boolean('skip_on_upstream_skip').notNull().default(false),
    /** Why the run is not ready, or why it failed upstream; null when ready. */
    blockedReason: text('blocked_reason'),
    /** Memoization: a new run whose key matches a SUCCEEDED run of its project is SKIPPED. */
    cacheKey: text('cache_key'),
    /** Seconds a RUNNING-category run may stay silent before the reaper calls it UNKNOWN. */
    heartbeatTimeout: integer('heartbeat_timeout'),
    /** Seconds a PENDING/QUEUED run may wait before the reaper fails it (QUEUE_TIMEOUT). */
    queueTimeout: integer('queue_timeout'),
    /** The SUCCEEDED run a memoized run stands for. */
    memoizedFrom: uuid('memoized_from').references((): AnyPgColumn => runs.id, {
      onDelete: 'set null',
    }),
    progress: doublePrecision('progress'),
    phase: text('phase'),
    stopMessage: text('stop_message'),
    /** The reason of the change into the current status (a dialect's name may depend on it). */
    statusReason: text('status_reason'),
    /** The outcome of the change into the current DONE status (Canary's DIFF, TIMEOUT, ...). */
    outcome: text('outcome'),
    /** The exit code of the change into the current DONE status (cleared like outcome). */
    exitCode: integer('exit_code'),
    /** Free-form JSON object, changed after creation by updateRun (merged key by key). */
    attributes: jsonb('attributes')
      .$type<Record<string, unknown>>()
      .notNull()
      .default(sql`'{}'::jsonb`),
    /** The vocabulary the run was created in: its status is answered in it by default. */
    dialect: dialectEnum('dialect').notNull().default('RUNSTATE'),
    /** The run this one is a step of (same project); its children go with it. */
    parentId: uuid('parent_id').references((): AnyPgColumn => runs.id, { onDelete: 'cascade' }),
    /** 0 for a run without a parent, else the parent's depth + 1 (at most 8). */
    depth: integer('depth').notNull().default(0),
    /** Its name among its parent's children (unique there). */
    op: text('op'),
    /** The server moves it after its children (RUNNING, then SUCCEEDED or FAILED). */
    rollup: boolean('rollup').notNull().default(false),
    /** Created ON_SCHEDULE; the reaper queues it at this time. */
    scheduledAt: ts('scheduled_at'),
    idempotencyKey: text('idempotency_key'),
    createdAt: ts('created_at').notNull().defaultNow(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
    startedAt: ts('started_at'),
    finishedAt: ts('finished_at'),
    heartbeatAt: ts('heartbeat_at'),
  },
  (t) => [
    // createRun's idempotency: one run per (project, key).
    uniqueIndex('runs_project_idempotency_key_uq')
      .on(t.project, t.idempotencyKey)
      .where(sql`${t.idempotencyKey} IS NOT NULL`),
    // Keyset orders (created_at, id) and (updated_at, id), alone and within a project / status.
    index('runs_created_at_id_idx').on(t.createdAt, t.id),
    // Retention: the roots done longest ago; and a deleted run's memoized ones (set null).
    index('runs_done_roots_finished_at_idx')
      .on(t.finishedAt)
      .where(sql`${t.parentId} IS NULL AND ${t.finishedAt} IS NOT NULL`),
    index('runs_memoized_from_idx')
      .on(t.memoizedFrom)
      .where(sql`${t.memoizedFrom} IS NOT NULL`),
    // RunFilter.meta / RunFilter.attributes: JSON containment (@>).
    index('runs_meta_gin_idx').using('gin', sql`${t.meta} jsonb_path_ops`),
    index('runs_attributes_gin_idx').using('gin', sql`${t.attributes} jsonb_path_ops`),
    index('runs_updated_at_id_idx').on(t.updatedAt, t.id),
    index('runs_project_created_at_id_idx').on(t.project, t.createdAt, t.id),
    index('runs_project_updated_at_id_idx').on(t.project, t.updatedAt, t.id),
    index('runs_status_created_at_id_idx').on(t.status, t.createdAt, t.id),
    index('runs_project_status_created_at_id_idx').on(t.project, t.status, t.createdAt, t.id),
    // tags @> '{…}' (all must match) and name ILIKE '%…%'.
    index('runs_tags_gin_idx').using('gin', t.tags),
    index('runs_name_trgm_idx').using('gin', sql`${t.name} gin_trgm_ops`),
    // The reaper's three watch lists (findDeadlineCandidates): small partial indexes, not a scan.
    index('runs_heartbeat_watch_idx')
      .on(t.updatedAt)
      .where(
        sql`${t.heartbeatTimeout} IS NOT NULL AND ${t.status} = ANY('{SCHEDULED,STARTING,INITIALIZING,RUNNING,PROCESSING}'::run_status[])`,
      ),
    index('runs_queue_watch_idx')
      .on(t.updatedAt)
      .where(
        sql`${t.queueTimeout} IS NOT NULL AND ${t.status} = ANY('{CREATED,ON_SCHEDULE,COMPILED,QUEUED,RESUMING,RETRYING}'::run_status[])`,
      ),
    index('runs_stopping_idx')
      .on(t.updatedAt)
      .where(sql`${t.status} = 'STOPPING'`),
    // Steps: unique names among a parent's children; the children page; counts per status.
    uniqueIndex('runs_parent_op_uq')
      .on(t.parentId, t.op)
      .where(sql`${t.op} IS NOT NULL`),
    index('runs_parent_created_at_id_idx')
      .on(t.parentId, t.createdAt, t.id)
      .where(sql`${t.parentId} IS NOT NULL`),
    index('runs_parent_status_idx')
      .on(t.parentId, t.status)
      .where(sql`${t.parentId} IS NOT NULL`),
    // The reaper's schedule watch: runs waiting ON_SCHEDULE for their time.
    index('runs_schedule_watch_idx')
      .on(t.scheduledAt)
      .where(sql`${t.scheduledAt} IS NOT NULL AND ${t.status} = 'ON_SCHEDULE'`),
    // Memoization looks up a SUCCEEDED run by (project, cacheKey).
    index('runs_project_cache_key_idx')
      .on(t.project, t.cacheKey)
      .where(sql`${t.cacheKey} IS NOT NULL AND ${t.status} = 'SUCCEEDED'`),
  ],
);

/** Upstream dependencies: `runId` waits for `upstreamId`. Acyclic: upstreams exist first. */
export const runDependencies = pgTable(
  'run_dependencies',
  {
    runId: uuid('run_id')
      .notNull()
      .references(() => runs.id, { onDelete: 'cascade' }),
    upstreamId: uuid('upstream_id')
      .notNull()
      .references(() => runs.id, { onDelete: 'cascade' }),
    /**
     * A condition of its own (CreateRunInput.dependencies): the upstream statuses that satisfy
     * it, as text (both drivers read text arrays alike). Null: under the run's trigger policy.
     */
    when: text('when_statuses').array(),
  },
  (t) => [
    primaryKey({ columns: [t.runId, t.upstreamId] }),
    // A finished run looks up the runs waiting for it.
    index('run_dependencies_upstream_idx').on(t.upstreamId),
  ],
);

/**
 * Event triggers (Polyaxon's): `runId` starts once `refId` emitted one of `kinds` (RUN_STATUS_*,
 * RUN_STATUS_DONE), i.e. entered one of `statuses` (the kinds expanded, kept as text so both
 * drivers read them alike).
 */
export const runEventTriggers = pgTable(
  'run_event_triggers',
  {
    runId: uuid('run_id')
      .notNull()
      .references(() => runs.id, { onDelete: 'cascade' }),
    refId: uuid('ref_id')
      .notNull()
      .references(() => runs.id, { onDelete: 'cascade' }),
    kinds: text('kinds').array().notNull(),
    statuses: text('statuses').array().notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.runId, t.refId] }),
    // A run that changed looks up the runs watching it.
    index('run_event_triggers_ref_idx').on(t.refId),
  ],
);

/**
 * The change log: one row per accepted status change (and one for each creation), written in the
 * same transaction as the change. `id` orders the log; `tx_id` is the writing transaction, kept so
 * that a reader can tell whether every transaction that could still add a row below a given id has
 * finished (the resumable-cursor design builds on it).
 */
export const statusChanges = pgTable(
  'status_changes',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    txId: xid8('tx_id')
      .notNull()
      .default(sql`pg_current_xact_id()`),
    runId: uuid('run_id')
      .notNull()
      .references(() => runs.id, { onDelete: 'cascade' }),
    project: text('project').notNull(),
    fromStatus: runStatusEnum('from_status'),
    toStatus: runStatusEnum('to_status').notNull(),
    version: integer('version').notNull(),
    reason: text('reason'),
    message: text('message'),
    /** Recorded with the status where it alone loses meaning (Canary's diffed: FAILED, DIFF). */
    outcome: text('outcome'),
    /** The worker's exit code, as reported with the change. */
    exitCode: integer('exit_code'),
    /** A JSON object reported with the change (Polyaxon's meta_info). */
    meta: jsonb('meta').$type<Record<string, unknown>>(),
    /** The run's attempt after the change (a RETRYING row starts the next one): Parsl's try id. */
    attempt: integer('attempt').notNull().default(1),
    /** Set by an administrator's correction that bypassed the lifecycle table. */
    forced: boolean('forced').notNull().default(false),
    /** The name of the API token that made the change (or caused it); null: the service itself. */
    actor: text('actor'),
    /** The run's parent (copied, as project is): a pipeline's changes are read by it. */
    parentId: uuid('parent_id'),
    at: ts('at').notNull().defaultNow(),
  },
  (t) => [
    // One row per version of a run: the history can only ever be a single path.
    uniqueIndex('status_changes_run_version_uq').on(t.runId, t.version),
    index('status_changes_project_id_idx').on(t.project, t.id),
    index('status_changes_to_status_id_idx').on(t.toStatus, t.id),
    // A pipeline's changes (statusChanges with filter.parentId).
    index('status_changes_parent_id_idx')
      .on(t.parentId, t.id)
      .where(sql`${t.parentId} IS NOT NULL`),
  ],
);

/**
 * Runs per (project, root or step, status), as of the change log's id `throughId`
 * (run_counts_position). Counting is this plus the change-log rows after it (each row is +1 for
 * its `to` and -1 for its `from`), in one statement: exact, and cheap while the reaper folds the
 * log in (runs/run-counts.ts). Nothing is written per change.
 */
export const runCounts = pgTable(
  'run_counts',
  {
    project: text('project').notNull(),
    isRoot: boolean('is_root').notNull(),
    status: runStatusEnum('status').notNull(),
    n: bigint('n', { mode: 'number' }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.project, t.isRoot, t.status] })],
);

/**
 * A parent's steps per status, as of the same change-log id as run_counts (folded in the same
 * statement), so `childCounts` reads a few rows plus the parent's log rows after it instead of
 * counting every step. Steps share their parent's project.
 */
export const runChildCounts = pgTable(
  'run_child_counts',
  {
    parentId: uuid('parent_id').notNull(),
    status: runStatusEnum('status').notNull(),
    n: bigint('n', { mode: 'number' }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.parentId, t.status] })],
);

/** The one row saying up to which change-log id run_counts and run_child_counts have folded the log in. */
export const runCountsPosition = pgTable('run_counts_position', {
  id: integer('id').primaryKey().default(1),
  throughId: bigint('through_id', { mode: 'number' }).notNull(),
});

/**
 * The first answer to each (run, idempotencyKey) of transitionRun, so a replay returns it again.
 * `changeId` is set when the answer was an accepted change; `outcome` holds the answer's data.
 */
export const transitionKeys = pgTable(
  'transition_keys',
  {
    runId: uuid('run_id')
      .notNull()
      .references(() => runs.id, { onDelete: 'cascade' }),
    key: text('key').notNull(),
    changeId: bigint('change_id', { mode: 'number' }),
    outcome: jsonb('outcome').notNull().$type<Record<string, unknown>>(),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.runId, t.key] }),
    // Expiry (IDEMPOTENCY_TTL_HOURS, runs/retention.ts).
    index('transition_keys_created_at_idx').on(t.createdAt),
  ],
);

/** Batches of recordMeasurements sent with an idempotencyKey: a replay writes nothing again. */
export const measurementKeys = pgTable(
  'measurement_keys',
  {
    runId: uuid('run_id')
      .notNull()
      .references(() => runs.id, { onDelete: 'cascade' }),
    key: text('key').notNull(),
    /** How many points the first request recorded (the answer a replay gets). */
    count: integer('count').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.runId, t.key] }),
    index('measurement_keys_created_at_idx').on(t.createdAt),
  ],
);

export const measurements = pgTable(
  'measurements',
  {
    id: bigint('id', { mode: 'number' }).notNull().generatedAlwaysAsIdentity(),
    runId: uuid('run_id')
      .notNull()
      .references(() => runs.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    /** A number; null when the point is `data`. */
    value: doublePrecision('value'),
    /** Any other JSON value (a string, a boolean, an object, a list); null when it is `value`. */
    data: jsonb('data'),
    step: integer('step'),
    at: ts('at').notNull().defaultNow(),
    /** The writing transaction: tells other instances exactly which rows a batch wrote. */
    txId: xid8('tx_id')
      .notNull()
      .default(sql`pg_current_xact_id()`),
  },
  (t) => [
    // Partitioned by week of `at` (migration 0018; runs/retention.ts makes and drops the
    // partitions), so retention drops old points a week at a time instead of deleting rows of a
    // large table. A partitioned table's keys must hold its partition key.
    primaryKey({ columns: [t.id, t.at] }),
    // Series in time order (keyset (at, id)), and the newest point per name.
    index('measurements_run_at_id_idx').on(t.runId, t.at, t.id),
    index('measurements_run_name_at_id_idx').on(t.runId, t.name, t.at.desc(), t.id.desc()),
    check('measurements_value_or_data', sql`(${t.value} IS NULL) <> (${t.data} IS NULL)`),
  ],
);

/**
 * The change log's retention horizon: every change with id <= throughId may have been deleted by
 * retention (RETENTION_DAYS), so a cursor below it answers CURSOR_EXPIRED rather than a replay
 * with a silent gap. One row (id 1); 0 while nothing was deleted.
 */
export const changeLogHorizon = pgTable('change_log_horizon', {
  id: integer('id').primaryKey().default(1),
  throughId: bigint('through_id', { mode: 'number' }).notNull(),
});

/**
 * Where the change log's head was, now and then (retention.ts writes one every few minutes, and
 * migration 0018 the first): retention deletes only runs whose history was written before the
 * cutoff, so deleting a run imported today with old times does not expire everyone's cursors.
 */
export const changeLogMarks = pgTable('change_log_marks', {
  at: ts('at').primaryKey(),
  throughId: bigint('through_id', { mode: 'number' }).notNull(),
});

export type RunRow = typeof runs.$inferSelect;
export type StatusChangeRow = Omit<typeof statusChanges.$inferSelect, 'txId'>;
export type MeasurementRow = Omit<typeof measurements.$inferSelect, 'txId'>;

export const API_ROLES = ['READ', 'WRITE', 'ADMIN'] as const;
export type ApiRole = (typeof API_ROLES)[number];
export const apiRoleEnum = pgEnum('api_role', API_ROLES);

/**
 * API tokens. The secret itself is never stored: only its SHA-256, which is enough for a
 * 256-bit random secret (nothing to brute-force, so no slow hash is needed) and lets a request
 * be authenticated with one index lookup. `projects` null: every project.
 */
export const apiTokens = pgTable(
  'api_tokens',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    name: text('name').notNull(),
    role: apiRoleEnum('role').notNull(),
    projects: text('projects').array(),
    secretHash: text('secret_hash').notNull(),
    createdBy: text('created_by'),
    createdAt: ts('created_at').notNull().defaultNow(),
    revokedAt: ts('revoked_at'),
  },
  (t) => [
    uniqueIndex('api_tokens_secret_hash_uq').on(t.secretHash),
    // Names are what history records as the actor: one live token per name.
    uniqueIndex('api_tokens_live_name_uq')
      .on(t.name)
      .where(sql`revoked_at IS NULL`),
  ],
);

export type ApiTokenRow = typeof apiTokens.$inferSelect;
