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
/** Interleaved rounds per level; each figure is the median of its rounds. */
const ROUNDS = 5;
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
    return withBenchService(
      clusterUrl,
      most,
      async ({ databaseUrl, service: serviceProcess, client, sql }) => {
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
            const service: Round[] = [];
            const bare: Round[] = [];
            const top: Round[] = [];
            let perChange: number | null = null;
            // Interleaved rounds, each figure the median of its rounds: a few seconds in which
            // PostgreSQL checkpoints or vacuums then sway one round, not the comparison. Odd rounds
            // run service, bare transaction, ceiling; even rounds the reverse, so a machine that
            // speeds up or slows down over the level favours none of them.
            for (let round = 1; round <= ROUNDS; round++) {
              const counted = targeted && round === 1;
              const runService = async () => {
                if (counted) await new Promise((r) => setTimeout(r, STATS_SETTLE_MS));
                const commitsBefore = counted ? await commits(sql) : 0;
                log(`transitionRun, ${clients} clients, round ${round} of ${ROUNDS}`);
                const acceptedBefore = accepted;
                service.push(
                  await metered(serviceProcess.pid, () =>
                    closedLoop({
                      clients,
                      seconds,
                      operation: moveVia(client, serviceRuns, (ok) =>
                        ok ? accepted++ : refused++,
                      ),
                    }),
                  ),
                );
                service.at(-1)!.changes = accepted - acceptedBefore;
                if (counted) {
                  await new Promise((r) => setTimeout(r, STATS_SETTLE_MS));
                  // The bench's own two statements (these reads) are left out.
                  perChange = ((await commits(sql)) - commitsBefore - 2) / service.at(-1)!.changes;
                }
              };
              const runBare = async () => {
                log(`  bare transaction, ${clients} clients, round ${round}`);
                bare.push(
                  await metered(null, () =>
                    runBareTransitions({ sql, runs: bareRuns, status, clients, seconds }),
                  ),
                );
              };
              const runCeiling = async () => {
                log(`  ceiling (bare yoga, one statement), ${clients} clients, round ${round}`);
                let ceilingChanges = 0;
                top.push(
                  await metered(ceiling.pid, () =>
                    closedLoop({
                      clients,
                      seconds,
                      operation: moveVia(ceilingClient, ceilingRuns, (ok) => {
                        if (!ok) throw new Error('the ceiling refused a change');
                        ceilingChanges++;
                      }),
                    }),
                  ),
                );
                top.at(-1)!.changes = ceilingChanges;
              };
              const systems = targeted ? [runService, runBare, runCeiling] : [runService, runBare];
              for (const run of round % 2 === 1 ? systems : systems.reverse()) await run();
            }
            const [s, b] = [medianOf(service), medianOf(bare)];
            rows.push(...rowsFor(clients, s, b));
            notes.push(
              `${clients} clients: service CPU ${fmt(cpuShare(service) * 100, 0)} % of a core ` +
                `(${fmt(cpuPerOperation(service), 0)} µs per change); PostgreSQL ` +
                `${describeDatabaseCpu(service)}; load generator CPU ` +
                `${fmt(s.generatorCpu * 100, 0)} % (service run), ` +
                `${fmt(b.generatorCpu * 100, 0)} % (baseline run, PostgreSQL ` +
                `${describeDatabaseCpu(bare)}). Rounds: ${describeRounds(service, bare, top)}.`,
            );
            if (!targeted) continue;
            const t = medianOf(top);
            rows.push(...ceilingRows(clients, s, b, t, perChange!, cpuPerOperation(service)));
            notes.push(
              `${clients} clients, ceiling: CPU ${fmt(cpuShare(top) * 100, 0)} % of a core ` +
                `(${fmt(cpuPerOperation(top), 0)} µs per change); PostgreSQL ` +
                `${describeDatabaseCpu(top)}; load generator CPU ${fmt(t.generatorCpu * 100, 0)} %. ` +
                `Runstate over the ceiling within each round: ${describePairs(service, top)}.`,
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
            'postgres.js, with nothing else (no auth, rules, change log or metrics). At each ' +
            `number of clients the three run in turn, ${ROUNDS} rounds of it (every other round in ` +
            'the reverse order); each figure is the ' +
            "median of its rounds' (the notes give every round), CPU is summed over the rounds, " +
            'and transactions are counted over the first.',
          rows,
          notes,
        };
      },
    );
  },
};

/** One window of one system: its load, and the CPU its server and PostgreSQL spent on it. */
interface Round {
  load: LoadResult;
  /** The server process's CPU (0 for the bare transaction: the load generator sends it). */
  cpuSeconds: number;
  databaseCpuSeconds: number;
  wallSeconds: number;
  /** Changes made over the whole window, warm-up included (as the CPU is). */
  changes: number;
}

async function metered(pid: number | null, run: () => Promise<LoadResult>): Promise<Round> {
  const server = pid == null ? null : cpuMeter(pid);
  const database = postgresCpuMeter();
  const started = performance.now();
  const load = await run();
  return {
    load,
    cpuSeconds: server?.().cpuSeconds ?? 0,
    databaseCpuSeconds: database().cpuSeconds,
    wallSeconds: (performance.now() - started) / 1000,
    changes: 0,
  };
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.floor(sorted.length / 2)]!;
};

/** Each figure the median of the rounds' (an odd number of them). */
function medianOf(rounds: readonly Round[]): Pick<LoadResult, 'perSecond' | 'generatorCpu'> & {
  latency: { p50: number; p99: number };
} {
  const loads = rounds.map((r) => r.load);
  return {
    perSecond: median(loads.map((l) => l.perSecond)),
    generatorCpu: median(loads.map((l) => l.generatorCpu)),
    latency: {
      p50: median(loads.map((l) => l.latency.p50)),
      p99: median(loads.map((l) => l.latency.p99)),
    },
  };
}

type Medians = ReturnType<typeof medianOf>;

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

/** The server's CPU over all its rounds, as a share of one core. */
const cpuShare = (rounds: readonly Round[]) =>
  sum(rounds.map((r) => r.cpuSeconds)) / sum(rounds.map((r) => r.wallSeconds));

/** The server's CPU per change over all its rounds, µs. */
const cpuPerOperation = (rounds: readonly Round[]) =>
  (sum(rounds.map((r) => r.cpuSeconds)) / sum(rounds.map((r) => r.changes))) * 1e6;

/**
 * PostgreSQL's CPU over the rounds (warm-ups included): its share of a core, and that share over
 * the median changes per second measured after the warm-ups, as time per change.
 */
function describeDatabaseCpu(rounds: readonly Round[]) {
  const share =
    sum(rounds.map((r) => r.databaseCpuSeconds)) / sum(rounds.map((r) => r.wallSeconds));
  return `${fmt(share * 100, 0)} % of a core (${fmt((share / medianOf(rounds).perSecond) * 1e6, 0)} µs per change)`;
}

/**
 * Each round's ratio of changes/s (the two ran within seconds of each other), and their median:
 * how far the machine's drift alone moves the comparison.
 */
function describePairs(service: readonly Round[], other: readonly Round[]) {
  const ratios = service.map((r, i) => r.load.perSecond / other[i]!.load.perSecond);
  return `${ratios.map((r) => `${fmt(r, 2)}×`).join(' / ')} (median ${fmt(median(ratios), 2)}×)`;
}

/** Every round's changes/s and p99, so the spread behind each median shows. */
function describeRounds(...systems: (readonly Round[])[]) {
  const names = ['service', 'bare', 'ceiling'];
  return systems
    .map((rounds, i) =>
      rounds.length === 0
        ? null
        : `${names[i]} ${rounds.map((r) => fmt(r.load.perSecond, 0)).join(' / ')} changes/s ` +
          `(p99 ${rounds.map((r) => fmt(r.load.latency.p99, 1)).join(' / ')} ms)`,
    )
    .filter((text) => text !== null)
    .join('; ');
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
  service: Medians,
  bare: Medians,
  ceiling: Medians,
  transactionsPerChange: number,
  cpuPerChange: number,
): Row[] {
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

function rowsFor(clients: number, service: Medians, bare: Medians): Row[] {
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
