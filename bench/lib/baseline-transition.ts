import type postgres from 'postgres';
import { closedLoop, type LoadResult } from './closed-loop.js';
import { flip } from './runs.js';

/**
 * The baseline of a status change (benchmarks.md): the same transaction runstate's change needs
 * at the least, sent straight to PostgreSQL by a bare postgres.js client: a compare-and-set
 * UPDATE of the run and an INSERT into the history, no NOTIFY.
 */
export async function bareTransition(
  sql: postgres.Sql,
  id: string,
  from: string,
  to: string,
): Promise<void> {
  await sql.begin(async (tx) => {
    const [run] = await tx<{ project: string; version: number }[]>`
      UPDATE runs SET status = ${to}::run_status, version = version + 1, revision = revision + 1,
             updated_at = now()
      WHERE id = ${id} AND status = ${from}::run_status
      RETURNING project, version`;
    if (!run) throw new Error(`baseline: run ${id} was not ${from}`);
    await tx`
      INSERT INTO status_changes (run_id, project, from_status, to_status, version, reason)
      VALUES (${id}, ${run.project}, ${from}::run_status, ${to}::run_status, ${run.version}, 'bench')`;
  });
}

/**
 * Clients each moving their own run RUNNING ⇄ PROCESSING with the bare transaction, back to
 * back, for `seconds`; `status` is kept current for the runs (client c owns runs[c]).
 */
export function runBareTransitions(options: {
  sql: postgres.Sql;
  runs: readonly string[];
  status: Map<string, string>;
  clients: number;
  seconds: number;
}): Promise<LoadResult> {
  const { sql, runs, status } = options;
  return closedLoop({
    clients: options.clients,
    seconds: options.seconds,
    operation: async (c) => {
      const id = runs[c]!;
      const from = status.get(id)!;
      await bareTransition(sql, id, from, flip(from));
      status.set(id, flip(from));
    },
  });
}
