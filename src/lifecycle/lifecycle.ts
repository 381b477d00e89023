/**
 * The run lifecycle: the 21 statuses, their categories and colors, and the legal transitions.
 *
 * This module is pure data plus lookups; it imports nothing of the project. It must equal the
 * project's copy of the design's `lifecycle.json` (test/fixtures/; test/unit/lifecycle.test.ts
 * walks all 21 × 21 pairs). One pair was added to the design's 171 for the dialects
 * (dialects.md): SCHEDULED -> SUCCEEDED, Parsl's launched -> exec_done.
 */

export const RUN_STATUSES = [
  'CREATED',
  'ON_SCHEDULE',
  'COMPILED',
  'QUEUED',
  'SCHEDULED',
  'STARTING',
  'INITIALIZING',
  'RUNNING',
  'PROCESSING',
  'WARNING',
  'UNSCHEDULABLE',
  'SUSPENDED',
  'STOPPING',
  'RESUMING',
  'RETRYING',
  'UNKNOWN',
  'SUCCEEDED',
  'FAILED',
  'UPSTREAM_FAILED',
  'STOPPED',
  'SKIPPED',
] as const;

export type RunStatus = (typeof RUN_STATUSES)[number];

export const STATUS_CATEGORIES = [
  'PENDING',
  'QUEUED',
  'RUNNING',
  'WARNING',
  'SUSPENDED',
  'STOPPING',
  'UNKNOWN',
  'DONE',
] as const;

export type StatusCategory = (typeof STATUS_CATEGORIES)[number];

/** Everything the lifecycle says about one status. */
export interface StatusInfo {
  readonly status: RunStatus;
  readonly category: StatusCategory;
  /** Hex color (Polyaxon's palette). */
  readonly color: string;
  /** No legal exit. */
  readonly isFinal: boolean;
  /** Legal next statuses, in the table's order. */
  readonly allowedNext: readonly RunStatus[];
}

const GREEN = '#1aaa55';
const RED = '#aa310f';
const BLUE = '#2e77aa';
const YELLOW = '#aa9e4a';
const GREY = '#485563';

/** Statuses a non-done, non-STOPPING run may always go to (rule 2). */
const ESCAPES = ['STOPPING', 'UNKNOWN', 'FAILED', 'STOPPED'] as const;

function info(
  status: RunStatus,
  category: StatusCategory,
  color: string,
  allowedNext: readonly RunStatus[],
): StatusInfo {
  return { status, category, color, isFinal: allowedNext.length === 0, allowedNext };
}

/**
 * The transition table, one entry per status, in lifecycle order. Each list keeps the order of
 * lifecycle.json so the API answers in a stable, documented order.
 */
const TABLE: readonly StatusInfo[] = [
  info('CREATED', 'PENDING', GREY, [
    'ON_SCHEDULE',
    'COMPILED',
    'QUEUED',
    'SCHEDULED',
    'STARTING',
    'INITIALIZING',
    'RUNNING',
    'PROCESSING',
    'STOPPING',
    'UNKNOWN',
    'FAILED',
    'UPSTREAM_FAILED',
    'STOPPED',
    'SKIPPED',
  ]),
  info('ON_SCHEDULE', 'PENDING', GREY, [
    'COMPILED',
    'QUEUED',
    'SCHEDULED',
    'STARTING',
    'INITIALIZING',
    'RUNNING',
    'PROCESSING',
    'STOPPING',
    'UNKNOWN',
    'FAILED',
    'UPSTREAM_FAILED',
    'STOPPED',
    'SKIPPED',
  ]),
  info('COMPILED', 'PENDING', GREY, [
    'QUEUED',
    'SCHEDULED',
    'STARTING',
    'INITIALIZING',
    'RUNNING',
    'PROCESSING',
    'UNSCHEDULABLE',
    'STOPPING',
    'UNKNOWN',
    'FAILED',
    'UPSTREAM_FAILED',
    'STOPPED',
    'SKIPPED',
  ]),
  info('QUEUED', 'QUEUED', GREY, [
    'SCHEDULED',
    'STARTING',
    'INITIALIZING',
    'RUNNING',
    'PROCESSING',
    'WARNING',
    'UNSCHEDULABLE',
    'SUSPENDED',
    'STOPPING',
    'UNKNOWN',
    'FAILED',
    'UPSTREAM_FAILED',
    'STOPPED',
    'SKIPPED',
  ]),
  info('SCHEDULED', 'RUNNING', BLUE, [
    'STARTING',
    'INITIALIZING',
    'RUNNING',
    'PROCESSING',
    'WARNING',
    'UNSCHEDULABLE',
    'SUSPENDED',
    'STOPPING',
    'RETRYING',
    'UNKNOWN',
    // Parsl's launched -> exec_done: a task may finish before anyone saw it start.
    'SUCCEEDED',
    'FAILED',
    'STOPPED',
  ]),
  info('STARTING', 'RUNNING', BLUE, [
    'INITIALIZING',
    'RUNNING',
    'PROCESSING',
    'WARNING',
    'SUSPENDED',
    'STOPPING',
    'RETRYING',
    'UNKNOWN',
    'SUCCEEDED',
    'FAILED',
    'STOPPED',
  ]),
  info('INITIALIZING', 'RUNNING', BLUE, [
    'RUNNING',
    'PROCESSING',
    'WARNING',
    'SUSPENDED',
    'STOPPING',
    'RETRYING',
    'UNKNOWN',
    'SUCCEEDED',
    'FAILED',
    'STOPPED',
  ]),
  info('RUNNING', 'RUNNING', BLUE, [
    'PROCESSING',
    'WARNING',
    'SUSPENDED',
    'STOPPING',
    'RETRYING',
    'UNKNOWN',
    'SUCCEEDED',
    'FAILED',
    'STOPPED',
  ]),
  info('PROCESSING', 'RUNNING', BLUE, [
    'RUNNING',
    'WARNING',
    'SUSPENDED',
    'STOPPING',
    'RETRYING',
    'UNKNOWN',
    'SUCCEEDED',
    'FAILED',
    'STOPPED',
  ]),
  info('WARNING', 'WARNING', YELLOW, [
    'SCHEDULED',
    'STARTING',
    'INITIALIZING',
    'RUNNING',
    'PROCESSING',
    'SUSPENDED',
    'STOPPING',
    'RETRYING',
    'UNKNOWN',
    'SUCCEEDED',
    'FAILED',
    'STOPPED',
  ]),
  info('UNSCHEDULABLE', 'WARNING', YELLOW, ['QUEUED', 'SCHEDULED', 'STARTING', ...ESCAPES]),
  info('SUSPENDED', 'SUSPENDED', YELLOW, ['STOPPING', 'RESUMING', 'UNKNOWN', 'FAILED', 'STOPPED']),
  // Rule 4: a stop request ends only in STOPPED or FAILED, or SUCCEEDED if the run finished first.
  info('STOPPING', 'STOPPING', YELLOW, ['SUCCEEDED', 'FAILED', 'STOPPED']),
  info('RESUMING', 'PENDING', GREY, [
    'COMPILED',
    'QUEUED',
    'SCHEDULED',
    'STARTING',
    'INITIALIZING',
    'RUNNING',
    'STOPPING',
    'UNKNOWN',
    'FAILED',
    'UPSTREAM_FAILED',
    'STOPPED',
    'SKIPPED',
  ]),
  info('RETRYING', 'PENDING', YELLOW, [
    'COMPILED',
    'QUEUED',
    'SCHEDULED',
    'STARTING',
    'INITIALIZING',
    'RUNNING',
    'STOPPING',
    'UNKNOWN',
    'FAILED',
    'UPSTREAM_FAILED',
    'STOPPED',
    'SKIPPED',
  ]),
  // Rule 9: contact regained; a late SUCCEEDED is still a real result.
  info('UNKNOWN', 'UNKNOWN', YELLOW, [
    'SCHEDULED',
    'STARTING',
    'INITIALIZING',
    'RUNNING',
    'PROCESSING',
    'WARNING',
    'SUSPENDED',
    'STOPPING',
    'RETRYING',
    'SUCCEEDED',
    'FAILED',
    'STOPPED',
  ]),
  info('SUCCEEDED', 'DONE', GREEN, []),
  // FAILED and STOPPED are done but not final: they may be resumed or retried.
  info('FAILED', 'DONE', RED, ['RESUMING', 'RETRYING']),
  info('UPSTREAM_FAILED', 'DONE', RED, []),
  info('STOPPED', 'DONE', GREY, ['RESUMING']),
  info('SKIPPED', 'DONE', GREY, []),
];

const BY_STATUS: ReadonlyMap<RunStatus, StatusInfo> = new Map(TABLE.map((s) => [s.status, s]));
const ALLOWED: ReadonlyMap<RunStatus, ReadonlySet<RunStatus>> = new Map(
  TABLE.map((s) => [s.status, new Set(s.allowedNext)]),
);
const ALLOWED_FROM: ReadonlyMap<RunStatus, readonly RunStatus[]> = new Map(
  RUN_STATUSES.map((to) => [
    to,
    TABLE.filter((s) => ALLOWED.get(s.status)?.has(to)).map((s) => s.status),
  ]),
);

/** Every status reachable from each status through one or more legal moves. */
const REACHABLE: ReadonlyMap<RunStatus, ReadonlySet<RunStatus>> = new Map(
  RUN_STATUSES.map((from) => {
    const seen = new Set<RunStatus>();
    const queue = [...ALLOWED.get(from)!];
    for (let next = queue.shift(); next != null; next = queue.shift()) {
      if (seen.has(next)) continue;
      seen.add(next);
      queue.push(...ALLOWED.get(next)!);
    }
    return [from, seen];
  }),
);

/** Statuses whose first entry sets a run's `startedAt`. */
const STARTS_RUNNING: ReadonlySet<RunStatus> = new Set([
  'STARTING',
  'INITIALIZING',
  'RUNNING',
  'PROCESSING',
]);

/** The whole table, in lifecycle order. */
export function listStatuses(): readonly StatusInfo[] {
  return TABLE;
}

/** Everything known about one status. */
export function getStatusInfo(status: RunStatus): StatusInfo {
  const found = BY_STATUS.get(status);
  if (!found) throw new Error(`unknown run status ${String(status)}`);
  return found;
}

/** Whether `to` is a legal next status from `from` (a move to the same status is not a transition). */
export function isTransitionAllowed(from: RunStatus, to: RunStatus): boolean {
  return ALLOWED.get(from)?.has(to) ?? false;
}

/** The statuses from which `to` may be entered. */
export function getStatusesAllowedInto(to: RunStatus): readonly RunStatus[] {
  return ALLOWED_FROM.get(to) ?? [];
}

/**
 * Whether a run in `from` may still enter one of `statuses` by legal moves (FAILED may be
 * retried and succeed after all; SUCCEEDED can enter nothing).
 */
export function canStillEnter(from: RunStatus, statuses: readonly RunStatus[]): boolean {
  const reachable = REACHABLE.get(from)!;
  return statuses.some((s) => reachable.has(s));
}

/**
 * Statuses recorded before `to` when a run in `from` is sent `to`: none for a move of the table;
 * RESUMING for a SUSPENDED run reported back in a status RESUMING leads to (Perceval's
 * SUSPENDED -> RUNNING: a suspended job that runs again was resumed). Null: not legal at all.
 */
export function impliedSteps(from: RunStatus, to: RunStatus): readonly RunStatus[] | null {
  if (isTransitionAllowed(from, to)) return [];
  if (from === 'SUSPENDED' && isTransitionAllowed('RESUMING', to)) return ['RESUMING'];
  return null;
}

export function getCategory(status: RunStatus): StatusCategory {
  return getStatusInfo(status).category;
}

/** All statuses of the given categories. */
export function getStatusesInCategories(categories: readonly StatusCategory[]): RunStatus[] {
  const wanted = new Set(categories);
  return TABLE.filter((s) => wanted.has(s.category)).map((s) => s.status);
}

export function isDone(status: RunStatus): boolean {
  return getCategory(status) === 'DONE';
}

/** Entering this status for the first time marks the run as started. */
export function startsRunning(status: RunStatus): boolean {
  return STARTS_RUNNING.has(status);
}

export function isRunStatus(value: unknown): value is RunStatus {
  return typeof value === 'string' && BY_STATUS.has(value as RunStatus);
}
