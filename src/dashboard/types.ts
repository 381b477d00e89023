export interface RunSummary {
  id: string;
  project: string;
  name: string | null;
  /** Its name among its parent's children (a pipeline's step). */
  op: string | null;
  status: string;
  category: string;
  color: string;
  progress: number | null;
  phase: string | null;
  isDone: boolean;
  /** The run's home dialect (RUNSTATE, PARSL, …). */
  dialect: string;
  /** Its current status in its dialect's names (`exec_done` for a Parsl run that SUCCEEDED). */
  nativeStatus: string;
  /** Grows with every change of the run: the larger of two snapshots is the newer. */
  revision: number;
  /** What its DONE status came with (`DIFF`, `TIMEOUT`); null while not done. */
  outcome: string | null;
  createdAt: string;
  updatedAt: string;
}

export const RUN_SUMMARY = `id project name op status category color progress phase isDone dialect nativeStatus revision outcome createdAt updatedAt`;

export interface StatusInfo {
  status: string;
  category: string;
  color: string;
}

/** The dialect whose names are runstate's own: no native name is shown for its runs. */
export const RUNSTATE_DIALECT = 'RUNSTATE';

/** How the systems spell their own names. */
const DIALECT_NAMES: Record<string, string> = {
  POLYAXON: 'Polyaxon',
  PERCEVAL: 'Perceval',
  PARSL: 'Parsl',
  CANARY: 'Canary',
};

/** "Parsl" for PARSL; a dialect the page does not know yet reads as the API spells it. */
export function dialectName(dialect: string): string {
  return DIALECT_NAMES[dialect] ?? dialect;
}

/** How many runs are in one status (`runCounts`, `childCounts`: zero counts left out). */
export interface StatusCount {
  status: string;
  category: string;
  count: number;
}

export const STATUS_COUNT = `status category count`;

/** What a token may do (`viewer { role }`): each role may do everything the ones before it may. */
export type Role = 'READ' | 'WRITE' | 'ADMIN';

/** Whether a role may stop, retry and resume runs (every run mutation needs WRITE). */
export function canWrite(role: Role | null): boolean {
  return role === 'WRITE' || role === 'ADMIN';
}
