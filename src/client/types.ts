/** The shapes the client reads and sends; names as in schema.graphql. */

export type RunStatus = string;

/** A status vocabulary: runstate's own, or that of a system runstate serves (dialects.md). */
export type Dialect = 'RUNSTATE' | 'POLYAXON' | 'PERCEVAL' | 'PARSL' | 'CANARY';

/** A dialect's named set of statuses (Parsl's `final`, Perceval's `maybe_completed`). */
export interface PredicateFilter {
  dialect: Dialect;
  name: string;
}

export interface Run {
  id: string;
  project: string;
  name: string | null;
  status: RunStatus;
  category: string;
  color: string;
  version: number;
  attempt: number;
  progress: number | null;
  phase: string | null;
  heartbeatTimeout: number | null;
  isRunning: boolean;
  isDone: boolean;
  tags: string[];
  createdAt: string;
  updatedAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** The run's home dialect (CreateRunInput.dialect, default RUNSTATE). */
  dialect: Dialect;
  /**
   * The current status in the run's own dialect's names (`exec_done` for a Parsl run), or in
   * the dialect a listing asked for (listRuns' `dialect`).
   */
  nativeStatus: string;
  /** Its name among its parent's steps (CreateRunInput.op), or null. */
  op: string | null;
  /** Its status follows its steps' (CreateRunInput.rollup). */
  rollup: boolean;
  /** When a scheduled run is queued (it waits ON_SCHEDULE until then), or null. */
  scheduledAt: string | null;
  /** Why it waits or failed upstream (a dependency, a trigger), or null. */
  blockedReason: string | null;
  /** +1 on every write to the run: of two answers about it, the newer has the larger. */
  revision: number;
  /** The outcome of the change into the current DONE status (PASS, DIFF…), or null. */
  outcome: string | null;
  /** The exit code reported with the change into the current DONE status, or null. */
  exitCode: number | null;
  /** Free-form JSON object, changed with RunHandle.update(). */
  attributes: Record<string, unknown>;
}

// Only the run's own columns: nothing here costs the server another read per answer (a
// heartbeat's, say). `parent`, `children` and `dependencies` are asked for where needed.
const RUN_BASE_FIELDS = `id project name status category color version attempt progress phase
  heartbeatTimeout isRunning isDone tags createdAt updatedAt startedAt finishedAt dialect op
  rollup scheduledAt blockedReason revision outcome exitCode attributes`;

export const RUN_FIELDS = `${RUN_BASE_FIELDS} nativeStatus`;

/** RUN_FIELDS with `nativeStatus` in the operation's `$dialect: Dialect` (null: the run's own). */
export const RUN_FIELDS_IN_DIALECT = `${RUN_BASE_FIELDS} nativeStatus(dialect: $dialect)`;

export interface StatusChange {
  cursor: string;
  runId: string;
  from: RunStatus | null;
  to: RunStatus;
  /** `to` in the run's dialect's names, or in the dialect the watch asked for. */
  nativeTo: string;
  version: number;
  reason: string | null;
  message: string | null;
  forced: boolean;
  actor: string | null;
  at: string;
  run: { project: string; name: string | null };
}

export interface StatusChangeFilter {
  runIds?: string[];
  projects?: string[];
  statuses?: RunStatus[];
  categories?: string[];
  /** Changes whose `to` is in this dialect's predicate. */
  predicate?: PredicateFilter;
  /** Changes of the steps of this run (a pipeline's). */
  parentId?: string;
}

export interface RunFilter {
  project?: string;
  statuses?: RunStatus[];
  categories?: string[];
  tags?: string[];
  nameContains?: string;
  /** Runs whose status is in this dialect's predicate (`{ dialect: 'PARSL', name: 'final' }`). */
  predicate?: PredicateFilter;
  /** The steps of this run. */
  parentId?: string;
  /** Only runs without a parent (true), or only steps (false). */
  roots?: boolean;
  /** Created at or after this time (ISO 8601). */
  createdAfter?: string;
  /** Created before this time (ISO 8601). */
  createdBefore?: string;
}

/**
 * A reference to another run in `dependsOn`, `dependencies` and `events`: its id, `runs.<uuid>`,
 * or `ops.<name>` (a step of the same parent, by its op).
 */
export type RunRef = string;

/** An upstream with the statuses that satisfy it (default `['SUCCEEDED']`). */
export interface DependencyInput {
  ref: RunRef;
  when?: readonly RunStatus[];
}

/** An event trigger: the run waits until `ref` emits one of `kinds` (RUN_STATUS_RUNNING…). */
export interface EventTriggerInput {
  ref: RunRef;
  kinds: readonly string[];
}

/** What a new run may say besides its project and place in a pipeline. */
export interface RunInputFields {
  name?: string;
  /** The run's home dialect: its nativeStatus and transition() names are in it (default RUNSTATE). */
  dialect?: Dialect;
  tags?: readonly string[];
  meta?: Record<string, unknown>;
  /** Made up by the client when absent, so a retried create makes one run. */
  idempotencyKey?: string;
  maxRetries?: number;
  /** Upstreams that must succeed (per `trigger`): ids, `runs.<uuid>` or `ops.<name>`. */
  dependsOn?: readonly RunRef[];
  /** The trigger policy over dependsOn (ALL_SUCCEEDED by default). */
  trigger?: string;
  /** Upstreams with their own conditions (Canary's `when`), all required. */
  dependencies?: readonly DependencyInput[];
  events?: readonly EventTriggerInput[];
  skipOnUpstreamSkip?: boolean;
  heartbeatTimeout?: number;
  queueTimeout?: number;
  cacheKey?: string;
  /** This run's status follows its steps' (RUNNING, then SUCCEEDED or FAILED). */
  rollup?: boolean;
  /** Created ON_SCHEDULE; the server queues it at this time (not in the past, no upstreams). */
  scheduledAt?: string | Date;
  /** A JSON object, changed later with RunHandle.update(). */
  attributes?: Record<string, unknown>;
  /** When it was created elsewhere (an import; not in the future). */
  createdAt?: string | Date;
  /** Any other CreateRunInput field the server knows. */
  [field: string]: unknown;
}

export interface CreateRunInput extends RunInputFields {
  project: string;
  /** The run this one is a step of (same project, at most 8 levels deep). */
  parentId?: string;
  /** Its name among the parent's steps, unique there (needs parentId). */
  op?: string;
}

/**
 * A step of a pipeline: its op and anything a run may say. Its project is the parent's unless
 * given (it must be the same anyway).
 */
export interface StepInput extends RunInputFields {
  op: string;
  project?: string;
}

/**
 * What `measure()` records: a number (stored as the point's `value`, charted), or any other JSON
 * value, sent as its `data`: a string, a boolean, an object or a list (at most 16 KB as JSON).
 */
export type MeasuredValue = number | string | boolean | readonly unknown[] | object;

/** One point of a series: exactly one of `value` (a number) and `data` (other JSON) is set. */
export interface Measurement {
  name: string;
  /** The number, or null when the point is `data`. */
  value: number | null;
  /** The JSON value (a string, a boolean, an object, a list), or null when it is a `value`. */
  data: unknown;
  step: number | null;
  at: string;
}

export const MEASUREMENT_FIELDS = `name value data step at`;
