export interface RunSummary {
  id: string;
  project: string;
  name: string | null;
  status: string;
  category: string;
  color: string;
  progress: number | null;
  phase: string | null;
  isDone: boolean;
  /** Grows with every change of the run: the larger of two snapshots is the newer. */
  revision: number;
  createdAt: string;
  updatedAt: string;
}

export const RUN_SUMMARY = `id project name status category color progress phase isDone revision createdAt updatedAt`;

export interface StatusInfo {
  status: string;
  category: string;
  color: string;
}
