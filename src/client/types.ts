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
}

const RUN_BASE_FIELDS = `id project name status category color version attempt progress phase
  heartbeatTimeout isRunning isDone tags createdAt updatedAt startedAt finishedAt dialect`;

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
}

export interface RunFilter {
  project?: string;
  statuses?: RunStatus[];
  categories?: string[];
  tags?: string[];
  nameContains?: string;
  /** Runs whose status is in this dialect's predicate (`{ dialect: 'PARSL', name: 'final' }`). */
  predicate?: PredicateFilter;
}

export interface CreateRunInput {
  project: string;
  name?: string;
  /** The run's home dialect: its nativeStatus and transition() names are in it (default RUNSTATE). */
  dialect?: Dialect;
  tags?: string[];
  meta?: Record<string, unknown>;
  /** Made up by the client when absent, so a retried create makes one run. */
  idempotencyKey?: string;
  maxRetries?: number;
  dependsOn?: string[];
  heartbeatTimeout?: number;
  queueTimeout?: number;
  cacheKey?: string;
  [field: string]: unknown;
}
