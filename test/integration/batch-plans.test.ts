import postgres from 'postgres';
import { expect, it } from 'vitest';
import { createPostgresDatabase } from '../../src/db/client.js';
import { dataOf } from '../support/operations.js';
import { startServer } from '../support/server.js';
import { withEmptyDatabase } from '../support/empty-database.js';

// Issue 18: a transition batch (transitionRuns, stopRun, the reaper, any change with a cascade)
// locks its runs and writes them by primary key, never by reading the whole runs table. Before,
// the lock read's joins and the UPDATE's join to its values were planned as scans of runs when
// the table had not been analyzed yet (a new table, a server without autovacuum) and even
// after ANALYZE at 10,000 runs: each batch then cost PostgreSQL time in proportion to the table,
// and the fan-out benchmark's writes queued behind it. Asserted on the plans PostgreSQL makes for
// the very statements the service sent, with their parameters (not timed).

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  Plans?: PlanNode[];
}

function scansOfRuns(node: PlanNode): string[] {
  const here =
    node['Node Type'] === 'Seq Scan' && node['Relation Name'] === 'runs' ? [node['Node Type']] : [];
  return [...here, ...(node.Plans ?? []).flatMap(scansOfRuns)];
}

it('a batch of changes finds its runs through the primary key, with or without statistics on runs', async () => {
  await withEmptyDatabase('batch_plans', async (url) => {
    const sent: { query: string; parameters: readonly unknown[] }[] = [];
    const database = createPostgresDatabase({
      url,
      poolSize: 2,
      onStatement: (query, parameters) => sent.push({ query, parameters }),
    });
    await database.migrate();
    // Parameters as the service's client sends them: drizzle has postgres.js pass a jsonb
    // parameter's text through as it is, where postgres.js alone would encode it again.
    const sql = postgres(url, {
      max: 1,
      onnotice: () => {},
      types: { jsonb: { to: 3802, from: [3802], serialize: (x: string) => x, parse: JSON.parse } },
    });
    const server = await startServer({ database });
    try {
      // A table as a busy service has it: thousands of runs, none of them ever analyzed.
      const ids = (
        await sql<{ id: string }[]>`
          INSERT INTO runs (project, status) SELECT 'plans', 'QUEUED' FROM generate_series(1, 5000)
          RETURNING id`
      ).map((r) => r.id);
      const kinds = {
        lock: (q: string) => q.includes('WITH RECURSIVE up'),
        write: (q: string) => q.includes('/* writeTransitions */'),
        batch: (q: string) => q.includes('/* transitionDirectBatch */'),
      };
      let next = 0;
      for (const analyzed of [false, true]) {
        if (analyzed) await sql`ANALYZE runs`;
        // The full path (an idempotency key needs it), then the one-statement batch.
        for (const path of ['full', 'one statement'] as const) {
          const batch = ids.slice(next, (next += 10));
          sent.length = 0;
          const answer = await server.gql<{ transitionRuns: { __typename: string }[] }>(
            `mutation($inputs: [TransitionRunInput!]!) { transitionRuns(inputs: $inputs) { __typename } }`,
            {
              inputs: batch.map((id) => ({
                id,
                to: 'RUNNING',
                ...(path === 'full' ? { idempotencyKey: `start-${id}` } : {}),
              })),
            },
          );
          expect(dataOf(answer).transitionRuns.map((r) => r.__typename)).toEqual(
            batch.map(() => 'TransitionAccepted'),
          );
          const expected = path === 'full' ? ['lock', 'write'] : ['batch'];
          const statements = sent.flatMap((s) => {
            const kind = Object.entries(kinds).find(([, is]) => is(s.query))?.[0];
            return kind ? [{ kind, ...s }] : [];
          });
          expect(statements.map((s) => s.kind)).toEqual(expected);
          for (const { kind, query, parameters } of statements) {
            // EXPLAIN without ANALYZE plans the statement with its values and runs nothing.
            const [row] = await sql.unsafe(`EXPLAIN (FORMAT JSON) ${query}`, parameters as never[]);
            const [{ Plan }] = (row as unknown as { 'QUERY PLAN': [{ Plan: PlanNode }] })[
              'QUERY PLAN'
            ];
            const what = `${kind}, analyzed: ${analyzed}`;
            expect(scansOfRuns(Plan), `${what}\n${JSON.stringify(Plan, null, 1)}`).toEqual([]);
          }
        }
      }
    } finally {
      await server.stop();
      await database.close();
      await sql.end();
    }
  });
});
