import postgres from 'postgres';
import { drizzle } from 'drizzle-orm/postgres-js';
import { closedLoop } from '../lib/closed-loop.js';
import { withBenchService } from '../lib/environment.js';
import { dataOrThrow } from '../lib/http.js';
import { cpuMeter, gcMeter } from '../lib/proc.js';
import { ratioOf, type Row } from '../lib/report.js';
import type { Scenario } from '../lib/scenario.js';
import { fmt } from '../lib/stats.js';
import * as schema from '../../src/db/schema.js';
import { listRuns } from '../../src/runs/run-queries.js';
import type { RunFilterInput } from '../../src/runs/run-queries.js';

const CLIENTS = 4;
const SECONDS = 4;
/**
 * Queries sent before each window, not counted: the service has just started (the first size)
 * or sat idle while the table was filled (seconds to a minute), and its first seconds of queries
 * cost more than the rest (measured: 1,300 to 1,500 µs per query in the first 5 s, 900 to
 * 1,000 after), as V8 compiles the path and the heap grows again.
 */
const WARMUP_SECONDS = 4;

/** The filters a dashboard sends, in turn. */
const FILTERS: RunFilterInput[] = [
  { project: 'q-7' },
  { project: 'q-7', statuses: ['RUNNING'] },
  { categories: ['RUNNING'] },
];
const RUNS = `query($filter: RunFilter) {
  runs(first: 50, filter: $filter) { edges { node { id name status project createdAt } } }
}`;

/**
 * Add runs numbered [from, to) spread over ten projects, six statuses and seven tags,
 * independently (every project has runs of every status): each filter below matches far more
 * than a page, even at 10,000 runs.
 */
async function fill(sql: postgres.Sql, from: number, to: number) {
  for (let start = from; start < to; start += 100_000) {
    const end = Math.min(to, start + 100_000) - 1;
    await sql`
      INSERT INTO runs (project, name, tags, status, created_at, updated_at)
      SELECT 'q-' || (i % 10), 'run-' || i, ARRAY['t' || (i % 7)],
             (ARRAY['CREATED','QUEUED','RUNNING','PROCESSING','SUCCEEDED','FAILED'])[1 + (i / 10) % 6]::run_status,
             now() - make_interval(secs => i), now() - make_interval(secs => i)
      FROM generate_series(${start}::int, ${end}::int) AS i`;
  }
  await sql`ANALYZE runs`;
}

/**
 * The SQL runstate sends for each filter, captured from the same query code on a bare
 * connection: the baseline sends exactly it, with no GraphQL or HTTP in between.
 */
async function captureStatements(url: string) {
  const captured: { query: string; parameters: unknown[] }[] = [];
  const capture = postgres(url, {
    max: 1,
    onnotice: () => {},
    debug: (_c, query, parameters) => captured.push({ query, parameters: parameters as unknown[] }),
  });
  const db = drizzle(capture, { schema });
  for (const filter of FILTERS) await listRuns(db as never, { filter, first: 50 }, null);
  await capture.end();
  return captured.filter((c) => /from "?runs"?\s/i.test(c.query));
}

/** Scenario 6: runs(first: 50, filter) latency with 10k, 100k and 1M runs stored. */
export const queries: Scenario = {
  name: 'queries',
  sizeMeans: 'the most runs stored (default 1,000,000; measured at 1 %, 10 % and all of it)',
  async run({ clusterUrl, size, log }) {
    const most = size ?? 1_000_000;
    const sizes = [Math.round(most / 100), Math.round(most / 10), most];
    const rows: Row[] = [];
    const notes: string[] = [];
    return withBenchService(clusterUrl, CLIENTS, async ({ databaseUrl, service, client, sql }) => {
      let stored = 0;
      const p99s: number[] = [];
      for (const target of sizes) {
        log(`filling to ${fmt(target, 0)} runs`);
        await fill(sql, stored, target);
        stored = target;
        const statements = await captureStatements(databaseUrl);
        log(`  runs(first: 50, filter), ${CLIENTS} clients`);
        let short = 0;
        const viaService = await closedLoop({
          clients: CLIENTS,
          seconds: SECONDS,
          warmupSeconds: WARMUP_SECONDS,
          meter: () => {
            const cpu = cpuMeter(service.pid);
            const gc = gcMeter(service.url);
            return () => ({ cpu: cpu(), gc: gc() });
          },
          operation: async (_c, i) => {
            const answer = dataOrThrow(
              await client.post<{ runs: { edges: unknown[] } }>(RUNS, {
                filter: FILTERS[i % FILTERS.length],
              }),
            );
            // Every filter matches far more than a page at each size: a short page is a bug.
            if (answer.runs.edges.length !== 50) short++;
          },
        });
        // The service's CPU over the queries it answered, both over the measured window.
        const cpu = viaService.metered.cpu;
        const cpuPerQuery = (cpu.cpuSeconds / viaService.operations) * 1e6;
        const gc = await viaService.metered.gc;
        log('  the same SQL, bare');
        const bare = await closedLoop({
          clients: CLIENTS,
          seconds: SECONDS,
          warmupSeconds: WARMUP_SECONDS,
          operation: async (_c, i) => {
            const { query, parameters } = statements[i % statements.length]!;
            await sql.unsafe(query, parameters as never[], { prepare: true });
          },
        });
        p99s.push(viaService.latency.p99);
        const largest = target === most;
        rows.push(
          {
            measure: `${fmt(target, 0)} runs: p50 / p99 ms`,
            runstate: `${fmt(viaService.latency.p50, 2)} / ${fmt(viaService.latency.p99, 2)}`,
            baseline: `${fmt(bare.latency.p50, 2)} / ${fmt(bare.latency.p99, 2)}`,
            ratio: ratioOf(viaService.latency.p99, bare.latency.p99),
            target: largest ? 'p99 ≤ 10 ms' : '–',
            met: largest ? viaService.latency.p99 <= 10 : null,
          },
          {
            measure: `${fmt(target, 0)} runs: queries/s`,
            runstate: fmt(viaService.perSecond, 0),
            baseline: fmt(bare.perSecond, 0),
            ratio: ratioOf(viaService.perSecond, bare.perSecond),
            target: '–',
            met: null,
          },
          {
            measure: `${fmt(target, 0)} runs: service CPU per query, µs`,
            runstate: fmt(cpuPerQuery, 0),
            baseline: '–',
            ratio: '–',
            target: '≤ 800 µs',
            met: cpuPerQuery <= 800,
          },
        );
        notes.push(
          `${fmt(target, 0)} runs: service CPU ${fmt(cpu.share * 100, 0)} % of a core; load ` +
            `generator CPU ${fmt(viaService.generatorCpu * 100, 0)} %; the service paused for ` +
            `its GC ${fmt((gc.minor / viaService.operations) * 1e6, 0)} µs per query in ` +
            `scavenges and ${fmt((gc.major / viaService.operations) * 1e6, 0)} µs in full GCs.` +
            (short
              ? ` **${short} answers had fewer than 50 runs.**`
              : ' Every answer had 50 runs.'),
        );
      }
      // Flat: no growth from the smallest table to the largest (keyset pagination, indexes).
      const growth = p99s.at(-1)! / p99s[0]!;
      rows.push({
        measure: `p99 at ${fmt(most, 0)} ÷ p99 at ${fmt(sizes[0]!, 0)}`,
        runstate: `${fmt(growth, 2)}×`,
        baseline: '–',
        ratio: '–',
        target: 'flat (≤ 2×)',
        met: growth <= 2,
      });
      return {
        title: '6. runs(first: 50, filter) as the table grows',
        setup:
          `${CLIENTS} clients query \`runs(first: 50)\` over HTTP in turn with a project filter, ` +
          'a project and status filter, and a category filter (newest first), for ' +
          `${SECONDS} s at each size, after ${WARMUP_SECONDS} s of the same queries not counted ` +
          "(the service's CPU is read over the counted window only). Runs are spread over ten " +
          'projects and six statuses. ' +
          'Baseline: the very SQL runstate sends for those filters (captured from its query ' +
          'code), sent bare and prepared by postgres.js.',
        rows,
        notes,
      };
    });
  },
};
