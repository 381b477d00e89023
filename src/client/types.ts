/** The shapes the client reads and sends; names as in schema.graphql. */

export type RunStatus = string;

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
}

export const RUN_FIELDS = `id project name status category color version attempt progress phase
  heartbeatTimeout isRunning isDone tags createdAt updatedAt startedAt finishedAt`;

export interface StatusChange {
  cursor: string;
  runId: string;
  from: RunStatus | null;
  to: RunStatus;
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
}

export interface RunFilter {
  project?: string;
  statuses?: RunStatus[];
  categories?: string[];
  tags?: string[];
  nameContains?: string;
}

export interface CreateRunInput {
  project: string;
  name?: string;
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
