/**
 * Dialects: the status vocabularies of the systems runstate serves (dialects.md), as one table
 * of data, read both ways. Input: every native name (and alias) is one runstate status, with an
 * outcome or a reason where the status alone loses its meaning. Answers: every runstate status
 * is one native name per dialect (a total function), refined by the outcome or reason recorded
 * with it (Canary's FAILED + DIFF answers `diffed`). Predicates are each system's own named
 * status sets, written in its own names; their runstate statuses are derived from the table.
 *
 * Pure data plus lookups; test/unit/dialects.test.ts walks the table both ways. Sources, read
 * from each project's code: Polyaxon `polyaxon/_schemas/lifecycle.py` (V1Statuses, LifeCycle);
 * Perceval (Quandela) `perceval/runtime/job_status.py` (RunningStatus, JobStatus); Parsl
 * `parsl/dataflow/states.py` (States, FINAL_STATES); Canary (sandialabs) `_canary/status.py`
 * (the test statuses and outcomes) and `_canary/job.py` (JobPhase, JobState).
 */
import {
  getCategory,
  getStatusInfo,
  RUN_STATUSES,
  STATUS_CATEGORIES,
  type RunStatus,
} from './lifecycle.js';

export const DIALECTS = ['RUNSTATE', 'POLYAXON', 'PERCEVAL', 'PARSL', 'CANARY'] as const;
export type Dialect = (typeof DIALECTS)[number];

/** One native status name, and what it is recorded as. */
export interface NativeStatus {
  /** Exactly as the system spells it. */
  readonly name: string;
  /** Other spellings accepted on input. */
  readonly aliases: readonly string[];
  readonly status: RunStatus;
  /** Recorded with the status where it alone loses meaning (Canary's DIFF, TIMEOUT, XFAIL). */
  readonly outcome: string | null;
  /** Recorded as the change's reason (Parsl's memo_done: MEMOIZED). */
  readonly reason: string | null;
  readonly description: string;
}

/** A system's named set of statuses (Polyaxon's is_compilable, Perceval's maybe_completed). */
export interface StatusPredicate {
  readonly name: string;
  readonly description: string;
  /** The runstate statuses it holds for. */
  readonly statuses: readonly RunStatus[];
}

export interface DialectInfo {
  readonly dialect: Dialect;
  readonly statuses: readonly NativeStatus[];
  readonly predicates: readonly StatusPredicate[];
}

/** A dialect as written: names for input, one answer per status, predicates in native names. */
interface DialectTable {
  readonly names: readonly NativeStatus[];
  /** The native name each runstate status is answered as (before refinement). */
  readonly answers: Readonly<Record<RunStatus, string>>;
  readonly predicates: readonly { name: string; description: string; names: string[] }[];
}

function n(
  name: string,
  status: RunStatus,
  description: string,
  more: { aliases?: string[]; outcome?: string; reason?: string } = {},
): NativeStatus {
  return {
    name,
    aliases: more.aliases ?? [],
    status,
    outcome: more.outcome ?? null,
    reason: more.reason ?? null,
    description,
  };
}

const p = (name: string, description: string, names: string[]) => ({ name, description, names });

const RUNSTATE: DialectTable = {
  names: RUN_STATUSES.map((status) =>
    n(status, status, `runstate's ${status} (category ${getCategory(status)}).`),
  ),
  answers: Object.fromEntries(RUN_STATUSES.map((s) => [s, s])) as Record<RunStatus, string>,
  predicates: [
    ...STATUS_CATEGORIES.map((category) =>
      p(
        category,
        `The status is in the ${category} category.`,
        RUN_STATUSES.filter((s) => getCategory(s) === category),
      ),
    ),
    p(
      'isDone',
      'Run.isDone: the DONE category.',
      filterStatuses((s) => getCategory(s) === 'DONE'),
    ),
    p(
      'isFinal',
      'Run.isFinal: no legal exit.',
      filterStatuses((s) => getStatusInfo(s).isFinal),
    ),
    p(
      'isRunning',
      'Run.isRunning: the RUNNING category.',
      filterStatuses((s) => getCategory(s) === 'RUNNING'),
    ),
    p(
      'isPending',
      'Run.isPending: the PENDING or QUEUED category.',
      filterStatuses((s) => ['PENDING', 'QUEUED'].includes(getCategory(s))),
    ),
    p(
      'isStoppable',
      'Run.isStoppable: STOPPING is a legal next status.',
      filterStatuses((s) => getStatusInfo(s).allowedNext.includes('STOPPING')),
    ),
  ],
};

function filterStatuses(test: (status: RunStatus) => boolean): string[] {
  return RUN_STATUSES.filter(test);
}

/** Polyaxon's V1Statuses values (lowercase); the enum's member names are accepted as aliases. */
const polyaxon = (name: string, status: RunStatus, description: string) =>
  n(name, status, description, { aliases: [name.toUpperCase()] });

const POLYAXON_RUNNING = ['scheduled', 'starting', 'initializing', 'processing', 'running'];
const POLYAXON_PENDING = ['created', 'on_schedule', 'resuming'];
const POLYAXON_DONE = ['failed', 'upstream_failed', 'stopped', 'skipped', 'succeeded'];

const POLYAXON: DialectTable = {
  names: [
    polyaxon('created', 'CREATED', 'The run was created.'),
    polyaxon('resuming', 'RESUMING', 'The run is being resumed.'),
    polyaxon('on_schedule', 'ON_SCHEDULE', 'The run waits for its schedule.'),
    polyaxon('compiled', 'COMPILED', 'The run was compiled and can be queued.'),
    polyaxon('queued', 'QUEUED', 'The run waits for resources.'),
    polyaxon('scheduled', 'SCHEDULED', 'The run was scheduled on the cluster.'),
    polyaxon('starting', 'STARTING', 'The run is starting.'),
    polyaxon(
      'initializing',
      'INITIALIZING',
      'The run is initializing (a status until Polyaxon 1.5, still among its event names).',
    ),
    polyaxon('running', 'RUNNING', 'The run is running.'),
    polyaxon('processing', 'PROCESSING', 'The run is processing its outputs.'),
    polyaxon('stopping', 'STOPPING', 'A stop was requested.'),
    polyaxon('failed', 'FAILED', 'The run failed.'),
    polyaxon('stopped', 'STOPPED', 'The run was stopped.'),
    polyaxon('succeeded', 'SUCCEEDED', 'The run succeeded.'),
    polyaxon('skipped', 'SKIPPED', 'The run was skipped.'),
    polyaxon('warning', 'WARNING', 'The run needs attention.'),
    polyaxon('unschedulable', 'UNSCHEDULABLE', 'The cluster cannot place the run.'),
    polyaxon('upstream_failed', 'UPSTREAM_FAILED', 'An upstream run failed.'),
    polyaxon('retrying', 'RETRYING', 'The run is being retried.'),
    polyaxon('unknown', 'UNKNOWN', 'The run is in an unknown state.'),
  ],
  answers: {
    CREATED: 'created',
    ON_SCHEDULE: 'on_schedule',
    COMPILED: 'compiled',
    QUEUED: 'queued',
    SCHEDULED: 'scheduled',
    STARTING: 'starting',
    INITIALIZING: 'initializing',
    RUNNING: 'running',
    PROCESSING: 'processing',
    WARNING: 'warning',
    UNSCHEDULABLE: 'unschedulable',
    // Polyaxon has no suspension: a halted run that is not done needs attention.
    SUSPENDED: 'warning',
    STOPPING: 'stopping',
    RESUMING: 'resuming',
    RETRYING: 'retrying',
    UNKNOWN: 'unknown',
    SUCCEEDED: 'succeeded',
    FAILED: 'failed',
    UPSTREAM_FAILED: 'upstream_failed',
    STOPPED: 'stopped',
    SKIPPED: 'skipped',
  },
  // LifeCycle's classmethods; RUNNING_VALUES keeps initializing, as Polyaxon's did before 1.5.
  predicates: [
    p('can_check_heartbeat', 'Heartbeats are checked (RUNNING_VALUES).', POLYAXON_RUNNING),
    p('is_unschedulable', 'unschedulable.', ['unschedulable']),
    p('is_processing', 'processing.', ['processing']),
    p('is_warning', 'WARNING_VALUES: unschedulable, warning.', ['unschedulable', 'warning']),
    p('is_pending', 'PENDING_VALUES: not compiled or queued yet.', POLYAXON_PENDING),
    p('is_compiled', 'compiled.', ['compiled']),
    p('is_compilable', 'COMPILABLE_VALUES: pending or retrying.', [
      ...POLYAXON_PENDING,
      'retrying',
    ]),
    p('is_queued', 'queued.', ['queued']),
    p('is_starting', 'starting.', ['starting']),
    p('is_running', 'RUNNING_VALUES: on the cluster.', POLYAXON_RUNNING),
    p('is_unknown', 'unknown.', ['unknown']),
    p('is_safe_stoppable', 'SAFE_STOP_VALUES: stoppable without calling the operator.', [
      ...POLYAXON_PENDING,
      'compiled',
    ]),
    p('is_k8s_stoppable', 'ON_K8S_VALUES: running, a warning or unknown (on Kubernetes).', [
      ...POLYAXON_RUNNING,
      'unschedulable',
      'warning',
      'unknown',
    ]),
    p('is_stoppable', 'Not done.', [
      'created',
      'resuming',
      'on_schedule',
      'compiled',
      'queued',
      ...POLYAXON_RUNNING,
      'stopping',
      'warning',
      'unschedulable',
      'retrying',
      'unknown',
    ]),
    p('is_stopping', 'stopping.', ['stopping']),
    p('is_done', 'DONE_VALUES: finished.', POLYAXON_DONE),
    p('is_done_or_stopping', 'is_done(progressing=True): DONE_VALUES and stopping.', [
      ...POLYAXON_DONE,
      'stopping',
    ]),
    p('failed', 'failed or upstream_failed.', ['failed', 'upstream_failed']),
    p('succeeded', 'succeeded.', ['succeeded']),
    p('stopped', 'stopped.', ['stopped']),
    p('skipped', 'skipped.', ['skipped']),
  ],
};

/** Perceval's RunningStatus names; its server's lowercase names are accepted as aliases. */
const perceval = (name: string, status: RunStatus, description: string, aliases: string[] = []) =>
  n(name, status, description, { aliases: [name.toLowerCase(), ...aliases] });

const PERCEVAL: DialectTable = {
  names: [
    perceval('WAITING', 'QUEUED', 'Recorded, waiting for a computing platform.'),
    perceval('RUNNING', 'RUNNING', 'Being run on a computing platform.'),
    perceval('SUCCESS', 'SUCCEEDED', 'Completed successfully ("completed" on the server).', [
      'completed',
    ]),
    perceval('ERROR', 'FAILED', 'Failed; partial results may be available.'),
    perceval('CANCELED', 'STOPPED', 'Canceled by the user or the system.'),
    perceval('SUSPENDED', 'SUSPENDED', 'Halted by the remote system; may be resumed.'),
    perceval('CANCEL_REQUESTED', 'STOPPING', 'A cancel was requested; leads to CANCELED.'),
    perceval('UNKNOWN', 'UNKNOWN', 'The status is not known.'),
  ],
  answers: {
    CREATED: 'WAITING',
    ON_SCHEDULE: 'WAITING',
    COMPILED: 'WAITING',
    QUEUED: 'WAITING',
    SCHEDULED: 'RUNNING',
    STARTING: 'RUNNING',
    INITIALIZING: 'RUNNING',
    RUNNING: 'RUNNING',
    PROCESSING: 'RUNNING',
    WARNING: 'RUNNING',
    UNSCHEDULABLE: 'WAITING',
    SUSPENDED: 'SUSPENDED',
    STOPPING: 'CANCEL_REQUESTED',
    RESUMING: 'WAITING',
    RETRYING: 'WAITING',
    UNKNOWN: 'UNKNOWN',
    SUCCEEDED: 'SUCCESS',
    FAILED: 'ERROR',
    UPSTREAM_FAILED: 'ERROR',
    STOPPED: 'CANCELED',
    SKIPPED: 'CANCELED',
  },
  // JobStatus's properties.
  predicates: [
    p('waiting', 'WAITING.', ['WAITING']),
    p('running', 'RUNNING or CANCEL_REQUESTED.', ['RUNNING', 'CANCEL_REQUESTED']),
    p('completed', 'SUCCESS, ERROR or CANCELED.', ['SUCCESS', 'ERROR', 'CANCELED']),
    p('canceled', 'CANCELED.', ['CANCELED']),
    p('success', 'SUCCESS.', ['SUCCESS']),
    p('failed', 'CANCELED or ERROR.', ['CANCELED', 'ERROR']),
    p('maybe_completed', 'completed, or UNKNOWN: results may be there.', [
      'SUCCESS',
      'ERROR',
      'CANCELED',
      'UNKNOWN',
    ]),
    p('unknown', 'UNKNOWN.', ['UNKNOWN']),
  ],
};

/** Parsl's States names; `States.<name>` (str() of a state) is accepted as an alias. */
const parsl = (
  name: string,
  status: RunStatus,
  description: string,
  more: { reason?: string; aliases?: string[] } = {},
) =>
  n(name, status, description, { ...more, aliases: [`States.${name}`, ...(more.aliases ?? [])] });

const PARSL: DialectTable = {
  names: [
    parsl('unsched', 'CREATED', 'Not scheduled yet (a state until Parsl 2025.11.17).'),
    parsl('pending', 'CREATED', 'Known, cannot run yet: usually waiting for dependencies.'),
    parsl('launched', 'SCHEDULED', 'Passed to an executor.'),
    parsl('running', 'RUNNING', 'Running on a worker (from monitoring).'),
    parsl('running_ended', 'PROCESSING', 'Finished running on a worker (from monitoring).'),
    parsl('joining', 'RUNNING', 'A join_app waiting for its inner tasks.', { reason: 'JOINING' }),
    parsl('exec_done', 'SUCCEEDED', 'Executed successfully.'),
    parsl('failed', 'FAILED', 'Failed; no more attempts will be made.'),
    parsl('dep_fail', 'UPSTREAM_FAILED', 'A dependency failed: no launch was attempted.'),
    parsl('fail_retryable', 'RETRYING', 'Failed, and will be retried.'),
    parsl('memo_done', 'SKIPPED', 'Found in the memo table: not run.', { reason: 'MEMOIZED' }),
  ],
  answers: {
    CREATED: 'pending',
    ON_SCHEDULE: 'pending',
    COMPILED: 'pending',
    QUEUED: 'pending',
    SCHEDULED: 'launched',
    STARTING: 'launched',
    INITIALIZING: 'running',
    RUNNING: 'running',
    PROCESSING: 'running_ended',
    WARNING: 'running',
    UNSCHEDULABLE: 'launched',
    SUSPENDED: 'launched',
    STOPPING: 'running',
    RESUMING: 'pending',
    RETRYING: 'fail_retryable',
    UNKNOWN: 'launched',
    SUCCEEDED: 'exec_done',
    FAILED: 'failed',
    UPSTREAM_FAILED: 'dep_fail',
    STOPPED: 'failed',
    SKIPPED: 'memo_done',
  },
  predicates: [
    p('final', 'FINAL_STATES: exec_done, memo_done, failed, dep_fail.', [
      'exec_done',
      'memo_done',
      'failed',
      'dep_fail',
    ]),
    p('failed', 'FINAL_FAILURE_STATES: failed, dep_fail.', ['failed', 'dep_fail']),
  ],
};

/** Canary's test statuses (lowercase), outcome names and job phases (upper case). */
const canary = (
  name: string,
  status: RunStatus,
  description: string,
  more: { outcome?: string; aliases?: string[] } = {},
) => n(name, status, description, more);

const CANARY_DONE = [
  'success',
  'xfail',
  'xdiff',
  'skipped',
  'diffed',
  'failed',
  'timeout',
  'invalid',
  'cancelled',
  'not_run',
  'ERROR',
  'BROKEN',
  'INTERRUPTED',
  'BLOCKED',
];

const CANARY: DialectTable = {
  names: [
    canary('created', 'CREATED', 'The test case was created.'),
    canary('pending', 'ON_SCHEDULE', 'Waiting for one or more dependencies.'),
    canary('ready', 'QUEUED', 'Set up and ready to run.'),
    canary('running', 'RUNNING', 'Running.'),
    canary('retry', 'RETRYING', 'To be run again.'),
    canary('unknown', 'UNKNOWN', 'The status could not be read.'),
    canary('success', 'SUCCEEDED', 'Passed (exit code 0).', { aliases: ['SUCCESS', 'PASS'] }),
    canary('xfail', 'SUCCEEDED', 'Failed as expected.', { outcome: 'XFAIL', aliases: ['XFAIL'] }),
    canary('xdiff', 'SUCCEEDED', 'Diffed as expected.', { outcome: 'XDIFF', aliases: ['XDIFF'] }),
    canary('skipped', 'SKIPPED', 'Skipped (exit code 63).', { aliases: ['SKIPPED'] }),
    canary('diffed', 'FAILED', 'Ran, but its results differ (exit code 64).', {
      outcome: 'DIFF',
      aliases: ['DIFFED', 'DIFF'],
    }),
    canary('failed', 'FAILED', 'Failed (exit code 65 or any other).', {
      aliases: ['FAILED', 'FAIL'],
    }),
    canary('timeout', 'FAILED', 'Exceeded its allowed run time (exit code 66).', {
      outcome: 'TIMEOUT',
      aliases: ['TIMEOUT'],
    }),
    canary('invalid', 'FAILED', 'The test case is invalid.', {
      outcome: 'INVALID',
      aliases: ['INVALID'],
    }),
    canary('cancelled', 'STOPPED', 'Cancelled while running (a keyboard interrupt).', {
      aliases: ['CANCELLED'],
    }),
    canary('not_run', 'UPSTREAM_FAILED', 'Not run: a dependency failed or was skipped.', {
      aliases: ['NOT RUN'],
    }),
    canary('ERROR', 'FAILED', 'An error outside the test itself (an outcome).', {
      outcome: 'ERROR',
    }),
    canary('BROKEN', 'FAILED', 'The test could not run (an outcome).', { outcome: 'BROKEN' }),
    canary('INTERRUPTED', 'STOPPED', 'Interrupted (an outcome).', { outcome: 'INTERRUPTED' }),
    canary('BLOCKED', 'UPSTREAM_FAILED', 'Blocked by an unmet dependency (an outcome).', {
      outcome: 'BLOCKED',
    }),
    canary('PENDING', 'CREATED', 'Job phase: submitted, not staged yet.'),
    canary('SUBMITTED', 'QUEUED', 'Job phase: handed to the scheduler (before STAGING existed).'),
    canary('STAGING', 'STARTING', 'Job phase: being staged.'),
    canary('RUNNING', 'RUNNING', 'Job phase: running.'),
    canary('FINISHING', 'PROCESSING', 'Job phase: finishing.'),
    canary('DONE', 'SUCCEEDED', 'Job phase: done; send a test status for any other end.'),
  ],
  answers: {
    CREATED: 'created',
    ON_SCHEDULE: 'pending',
    COMPILED: 'ready',
    QUEUED: 'ready',
    SCHEDULED: 'running',
    STARTING: 'running',
    INITIALIZING: 'running',
    RUNNING: 'running',
    PROCESSING: 'running',
    WARNING: 'running',
    UNSCHEDULABLE: 'ready',
    SUSPENDED: 'running',
    STOPPING: 'running',
    RESUMING: 'pending',
    RETRYING: 'retry',
    UNKNOWN: 'unknown',
    SUCCEEDED: 'success',
    FAILED: 'failed',
    UPSTREAM_FAILED: 'not_run',
    STOPPED: 'cancelled',
    SKIPPED: 'skipped',
  },
  // JobState's (is_pending … is_done), the test status's (complete, ready) and the outcome
  // categories' (is_success, is_failure, is_skipped, is_cancelled).
  predicates: [
    p('is_pending', 'Not started: job phase PENDING, or created, pending, ready, retry.', [
      'PENDING',
      'created',
      'pending',
      'ready',
      'retry',
    ]),
    p('is_submitted', 'Handed to the scheduler (job phase SUBMITTED).', ['SUBMITTED']),
    p('is_ready', 'Ready to run: dependencies met.', ['ready']),
    p('is_running', 'Running (job phase RUNNING).', ['RUNNING', 'running']),
    p('is_finishing', 'Finishing (job phase FINISHING).', ['FINISHING']),
    p('is_done', 'Done (job phase DONE): any end.', ['DONE', ...CANARY_DONE]),
    p('complete', 'Status.complete(): ran to an end (not cancelled or not run).', [
      'success',
      'xfail',
      'xdiff',
      'skipped',
      'diffed',
      'failed',
      'timeout',
    ]),
    p('is_success', 'Category PASS: success, xfail, xdiff.', ['success', 'xfail', 'xdiff']),
    p('is_failure', 'Category FAIL: diffed, failed, timeout, invalid, ERROR, BROKEN.', [
      'diffed',
      'failed',
      'timeout',
      'invalid',
      'ERROR',
      'BROKEN',
    ]),
    p('is_skipped', 'Category SKIP: skipped, BLOCKED.', ['skipped', 'BLOCKED']),
    p('is_cancelled', 'Category CANCEL: cancelled, INTERRUPTED.', ['cancelled', 'INTERRUPTED']),
  ],
};

const TABLES: Readonly<Record<Dialect, DialectTable>> = {
  RUNSTATE,
  POLYAXON,
  PERCEVAL,
  PARSL,
  CANARY,
};

/** A predicate's runstate statuses: those answered as one of its names, or recorded for one. */
function statusesOf(table: DialectTable, names: readonly string[]): RunStatus[] {
  const wanted = new Set(names);
  return RUN_STATUSES.filter(
    (s) =>
      wanted.has(table.answers[s]) ||
      table.names.some((entry) => entry.status === s && wanted.has(entry.name)),
  );
}

const INFOS: ReadonlyMap<Dialect, DialectInfo> = new Map(
  DIALECTS.map((dialect) => {
    const table = TABLES[dialect];
    return [
      dialect,
      {
        dialect,
        statuses: table.names,
        predicates: table.predicates.map(({ name, description, names }) => ({
          name,
          description,
          statuses: statusesOf(table, names),
        })),
      },
    ];
  }),
);

const BY_SPELLING: ReadonlyMap<Dialect, ReadonlyMap<string, NativeStatus>> = new Map(
  DIALECTS.map((dialect) => [
    dialect,
    new Map(
      TABLES[dialect].names.flatMap((entry) =>
        [entry.name, ...entry.aliases].map((spelling) => [spelling, entry] as const),
      ),
    ),
  ]),
);

export function listDialects(): readonly DialectInfo[] {
  return DIALECTS.map((d) => INFOS.get(d)!);
}

export function getDialect(dialect: Dialect): DialectInfo {
  return INFOS.get(dialect)!;
}

export function isDialect(value: unknown): value is Dialect {
  return typeof value === 'string' && (DIALECTS as readonly string[]).includes(value);
}

/** What a native name (or alias) is recorded as; null when the dialect has no such name. */
export function resolveNativeStatus(dialect: Dialect, spelling: string): NativeStatus | null {
  return BY_SPELLING.get(dialect)!.get(spelling) ?? null;
}

/**
 * A status in a dialect's names: the name recorded with this outcome (or reason) where one is,
 * else the status's own answer. Total: every status has a name in every dialect.
 */
export function nativeNameOf(
  dialect: Dialect,
  recorded: { status: RunStatus; outcome?: string | null; reason?: string | null },
): string {
  const table = TABLES[dialect];
  const refined = table.names.find(
    (entry) =>
      entry.status === recorded.status &&
      ((entry.outcome != null && entry.outcome === recorded.outcome) ||
        (entry.reason != null && entry.reason === recorded.reason)),
  );
  return refined?.name ?? table.answers[recorded.status];
}

/** The names of a dialect's predicates that hold for `status`. */
export function predicatesHolding(dialect: Dialect, status: RunStatus): string[] {
  return getDialect(dialect)
    .predicates.filter((p) => p.statuses.includes(status))
    .map((p) => p.name);
}

/** A predicate's statuses; null when the dialect has no predicate of that name. */
export function findPredicate(dialect: Dialect, name: string): StatusPredicate | null {
  return getDialect(dialect).predicates.find((p) => p.name === name) ?? null;
}
