/**
 * Counts the SQL statements (round trips) each mutation sends, against DATABASE_URL (a scratch
 * database: it is migrated and written to). Diagnostic, not a benchmark:
 *   DATABASE_URL=postgres://… npx tsx scripts/count-statements.ts
 */
import { buildApp } from '../src/app.js';
import { createPostgresDatabase } from '../src/db/client.js';
import { createLogger } from '../src/logger.js';

const url = process.env.DATABASE_URL;
if (!url) throw new Error('set DATABASE_URL to a scratch database');
let statements = 0;
const log: string[] = [];
const database = createPostgresDatabase({
  url,
  poolSize: 4,
  onStatement: (q) => {
    statements++;
    log.push(q.replace(/\s+/g, ' ').slice(0, 70));
  },
});
await database.migrate();
const app = buildApp({
  database,
  logger: createLogger('silent'),
  port: 0,
  host: '127.0.0.1',
  reaperIntervalMs: 3_600_000,
  // A diagnostic on loopback: no tokens, so the count is the mutation's alone.
  auth: { enabled: false },
});
const { url: endpoint } = await app.start();
const gql = async (query: string, variables: Record<string, unknown> = {}) => {
  const response = await fetch(endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as { data: Record<string, { id?: string }> };
};
// Let the tail settle, then count only what each mutation sends (the tail's reads are excluded
// by measuring with it idle: its poll interval is 1 s and each count takes a few ms).
await new Promise((resolve) => setTimeout(resolve, 300));
async function count(label: string, run: () => Promise<unknown>) {
  await new Promise((resolve) => setTimeout(resolve, 50));
  const before = statements;
  await run();
  console.log(`${label}: ${statements - before} statements`);
  if (process.argv.includes('--list'))
    console.log(
      log
        .slice(before)
        .map((q) => `  ${q}`)
        .join('\n'),
    );
}
const created = await gql(`mutation { createRun(input: { project: "count" }) { id } }`);
const id = created.data.createRun!.id;
await count('createRun', () => gql(`mutation { createRun(input: { project: "count" }) { id } }`));
await count('transitionRun (no dependents)', () =>
  gql(`mutation($id: ID!) { transitionRun(input: { id: $id, to: RUNNING }) { __typename } }`, {
    id,
  }),
);
await count('reportProgress', () =>
  gql(`mutation($id: ID!) { reportProgress(input: { id: $id, progress: 0.5 }) { id } }`, { id }),
);
await app.stop();
await database.close();
