import { runBareTransitions } from '../lib/baseline-transition.js';
import { closedLoop, type LoadResult } from '../lib/closed-loop.js';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { spawnAndWaitForUrl, withBenchService } from '../lib/environment.js';
import { createGraphQLClient, dataOrThrow } from '../lib/http.js';
import { cpuMeter, postgresCpuMeter } from '../lib/proc.js';
import { ratioOf, type Row } from '../lib/report.js';
import { createRunningRuns, flip } from '../lib/runs.js';
import type { Scenario } from '../lib/scenario.js';
import { fmt } from '../lib/stats.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

const TRANSITION = `mutation($id: ID!, $to: RunStatus!) {
  transitionRun(input: { id: $id, to: $to }) { __typename ... on TransitionAccepted { change { version } } }
}`;

const LEVELS = [1, 8, 32];
/** Levels with targets: there the ceiling runs too, and transactions per change are counted. */
const TARGET_LEVELS = new Set([8, 32]);
/** PostgreSQL backends flush their statistics when idle within 10 s (PGSTAT_IDLE_INTERVAL). */
const STATS_SETTLE_MS = 11_000;

type Sql = Parameters<typeof runBareTransitions>[0]['sql'];

/** Transactions committed in the bench database so far (pg_stat_database). */
async function commits(sql: Sql): Promise<number> {
  const [row] = (await sql`
    SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()`) as unknown as [
    { xact_commit: string },
  ];
  return Number(row.xact_commit);
}

/** Scenario 1: transitionRun over HTTP at 1, 8 and 32 clients against the bare transaction. */
export const transitions: Scenario = {
  name: 'transitions',
  sizeMeans: 'seconds measured per point (default 6)',
  async run({ clusterUrl, size, log }) {
    const seconds = size ?? 6;
    const most = Math.max(...LEVELS);
    return withBenchService(clusterUrl, most, async ({ databaseUrl, service, client, sql }) => {
      const serviceRuns = await createRunningRuns(client, 'bench-transitions', most);
      const bareRuns = await createRunningRuns(client, 'bench-baseline', most);
      const ceilingRuns = await createRunningRuns(client, 'bench-ceiling', most);
      const status = new Map(
        [...serviceRuns, ...bareRuns, ...ceilingRuns].map((id) => [id, 'RUNNING']),
      );
      const ceiling = await startCeiling(databaseUrl);
      const ceilingClient = createGraphQLClient(ceiling.url, 'none', most);
      let accepted = 0;
      let refused = 0;
      const rows: Row[] = [];
      const notes: string[] = [];
      const moveVia =
        (via: typeof client, ids: readonly string[], count: (ok: boolean) => void) =>
        async (c: number) => {
          const id = ids[c]!;
          const to = flip(status.get(id)!);
          const answer = dataOrThrow(
            await via.post<{ transitionRun: { __typename: string } }>(TRANSITION, { id, to }),
          );
          const ok = answer.transitionRun.__typename === 'TransitionAccepted';
          if (ok) status.set(id, to);
          count(ok);
        };
      try {
        for (const clients of LEVELS) {
          const targeted = TARGET_LEVELS.has(clients);
          if (targeted) await new Promise((r) => setTimeout(r, STATS_SETTLE_MS));
          const commitsBefore = targeted ? await commits(sql) : 0;
          log(`transitionRun, ${clients} clients`);
          const server = cpuMeter(service.pid);
          const database = postgresCpuMeter();
          const acceptedBefore = accepted;
          const viaService = await closedLoop({
            clients,
            seconds,
            operation: moveVia(client, serviceRuns, (ok) => (ok ? accepted++ : refused++)),
          });
          const serverCpu = server();
          const databaseCpu = database();
          const changes = accepted - acceptedBefore;
          let perChange: number | null = null;
          if (targeted) {
            await new Promise((r) => setTimeout(r, STATS_SETTLE_MS));
            // The bench's own two statements (these reads) are left out.
            perChange = (await commits(sql)) - commitsBefore - 2;
            perChange /= changes;
          }
          log(`  bare transaction, ${clients} clients`);
          const bareDatabase = postgresCpuMeter();
          const bare = await runBareTransitions({ sql, runs: bareRuns, status, clients, seconds });
          const bareDatabaseCpu = bareDatabase();
          rows.push(...rowsFor(clients, viaService, bare));
          notes.push(
            `${clients} clients: service CPU ${fmt(serverCpu.share * 100, 0)} % of a core ` +
              `(${fmt((serverCpu.cpuSeconds / changes) * 1e6, 0)} µs per change); PostgreSQL ` +
              `${describeDatabaseCpu(databaseCpu, viaService.perSecond)}; load generator CPU ` +
              `${fmt(viaService.generatorCpu * 100, 0)} % (service run), ` +
              `${fmt(bare.generatorCpu * 100, 0)} % (baseline run, PostgreSQL ` +
              `${describeDatabaseCpu(bareDatabaseCpu, bare.perSecond)}).`,
          );
          if (!targeted) continue;
          log(`  ceiling (bare yoga, one statement), ${clients} clients`);
          const ceilingCpu = cpuMeter(ceiling.pid);
          const ceilingDatabase = postgresCpuMeter();
          let ceilingChanges = 0;
          const top = await closedLoop({
            clients,
            seconds,
            operation: moveVia(ceilingClient, ceilingRuns, (ok) => {
              if (!ok) throw new Error('the ceiling refused a change');
              ceilingChanges++;
            }),
          });
          const topCpu = ceilingCpu();
          const topDatabaseCpu = ceilingDatabase();
          rows.push(...ceilingRows(clients, viaService, bare, top, perChange!, serverCpu, changes));
          notes.push(
            `${clients} clients, ceiling: CPU ${fmt(topCpu.share * 100, 0)} % of a core ` +
              `(${fmt((topCpu.cpuSeconds / ceilingChanges) * 1e6, 0)} µs per change); PostgreSQL ` +
              `${describeDatabaseCpu(topDatabaseCpu, top.perSecond)}; load generator CPU ` +
              `${fmt(top.generatorCpu * 100, 0)} %.`,
          );
        }
      } finally {
        ceilingClient.close();
        await ceiling.stop();
      }
      // Nothing lost: every accepted change is in the history, once.
      const [{ count }] = (await sql`
        SELECT count(*)::int AS count FROM status_changes WHERE project = 'bench-transitions'`) as unknown as [
        { count: number },
      ];
      const expected = accepted + 2 * serviceRuns.length; // + creation and the move to RUNNING
      notes.push(
        `Accepted ${fmt(accepted, 0)} changes, refused ${refused}; the history holds ` +
          `${fmt(count - 2 * serviceRuns.length, 0)} of them (${count === expected ? 'all, once' : '**mismatch**'}).`,
        `Transactions per change: pg_stat_database.xact_commit of the bench database over the ` +
          `service's run (read ${STATS_SETTLE_MS / 1000} s after it, once PostgreSQL's backends ` +
          `flushed their statistics), over the changes accepted; the service's reaper and token ` +
          `checks are included.`,
      );
      if (count !== expected) throw new Error(`history holds ${count}, expected ${expected}`);
      return {
        title: '1. transitionRun over HTTP',
        setup:
          `Each client owns one run and moves it RUNNING ⇄ PROCESSING with \`transitionRun\` over ` +
          `HTTP (keep-alive), back to back, for ${seconds} s after a 1 s warm-up. Baselines: the ` +
          'same change as a bare postgres.js transaction (UPDATE … WHERE status = $from ' +
          'RETURNING; INSERT into the history; COMMIT), no NOTIFY, the same number of clients; ' +
          'and, at 8 and 32 clients, the ceiling of this stack: a bare graphql-yoga server ' +
          '(bench/baseline/bare-transition-server.ts) sending the change as one statement over ' +
          'postgres.js, with nothing else (no auth, rules, change log or metrics).',
        rows,
        notes,
      };
    });
  },
};

/**
 * PostgreSQL's CPU over a run (warm-up included): its share of a core, and that share over the
 * changes per second measured after the warm-up, as time per change.
 */
function describeDatabaseCpu(cpu: { share: number }, changesPerSecond: number) {
  return `${fmt(cpu.share * 100, 0)} % of a core (${fmt((cpu.share / changesPerSecond) * 1e6, 0)} µs per change)`;
}

/** The ceiling server, on the bench database (the same pool size as the service's default). */
async function startCeiling(databaseUrl: string) {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'bench/baseline/bare-transition-server.ts'],
    {
      cwd: root,
      env: {
        PATH: process.env.PATH ?? '',
        NODE_ENV: 'production',
        DATABASE_URL: databaseUrl,
        POOL_SIZE: '20',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  return spawnAndWaitForUrl(child, /"url":"(http:[^"]+)"/);
}

function ceilingRows(
  clients: number,
  service: LoadResult,
  bare: LoadResult,
  ceiling: LoadResult,
  transactionsPerChange: number,
  serverCpu: { cpuSeconds: number },
  changes: number,
): Row[] {
  const cpuPerChange = (serverCpu.cpuSeconds / changes) * 1e6;
  const p99Gap = service.latency.p99 - ceiling.latency.p99;
  return [
    {
      measure: `${clients} clients: changes/s against the ceiling`,
      runstate: fmt(service.perSecond, 0),
      baseline: fmt(ceiling.perSecond, 0),
      ratio: ratioOf(service.perSecond, ceiling.perSecond),
      target: '≥ 0.8× ceiling, ≥ 0.5× bare',
      met:
        service.perSecond >= 0.8 * ceiling.perSecond && service.perSecond >= 0.5 * bare.perSecond,
    },
    {
      measure: `${clients} clients: p50 / p99 ms against the ceiling`,
      runstate: `${fmt(service.latency.p50, 2)} / ${fmt(service.latency.p99, 2)}`,
      baseline: `${fmt(ceiling.latency.p50, 2)} / ${fmt(ceiling.latency.p99, 2)}`,
      ratio: `p99 +${fmt(p99Gap, 2)} ms`,
      target: 'p99 ≤ ceiling + 5 ms',
      met: p99Gap <= 5,
    },
    {
      measure: `${clients} clients: PostgreSQL transactions per change`,
      runstate: fmt(transactionsPerChange, 3),
      baseline: '1',
      ratio: '–',
      target: '≤ 1.05',
      met: transactionsPerChange <= 1.05,
    },
    {
      measure: `${clients} clients: service CPU per change, µs`,
      runstate: fmt(cpuPerChange, 0),
      baseline: '–',
      ratio: '–',
      target: '≤ 600 µs',
      met: cpuPerChange <= 600,
    },
  ];
}

function rowsFor(clients: number, service: LoadResult, bare: LoadResult): Row[] {
  const inTarget = clients >= 8;
  const tpsRatio = service.perSecond / bare.perSecond;
  const p99Gap = service.latency.p99 - bare.latency.p99;
  return [
    {
      measure: `${clients} clients: changes/s`,
      runstate: fmt(service.perSecond, 0),
      baseline: fmt(bare.perSecond, 0),
      ratio: ratioOf(service.perSecond, bare.perSecond),
      target: inTarget ? '≥ 0.5×' : '–',
      met: inTarget ? tpsRatio >= 0.5 : null,
    },
    {
      measure: `${clients} clients: p50 / p99 ms`,
      runstate: `${fmt(service.latency.p50, 2)} / ${fmt(service.latency.p99, 2)}`,
      baseline: `${fmt(bare.latency.p50, 2)} / ${fmt(bare.latency.p99, 2)}`,
      ratio: `p99 +${fmt(p99Gap, 2)} ms`,
      target: inTarget ? 'p99 ≤ baseline + 5 ms' : '–',
      met: inTarget ? p99Gap <= 5 : null,
    },
  ];
}
