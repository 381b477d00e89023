import { cpus, loadavg } from 'node:os';
import postgres from 'postgres';
import { drizzle } from 'drizzle-orm/postgres-js';
import { closedLoop, type LoadResult } from '../lib/closed-loop.js';
import { BENCH_TOKEN, settleCluster, withBenchService } from '../lib/environment.js';
import { createGraphQLClient, dataOrThrow } from '../lib/http.js';
import { cpuMeter, schedSeconds } from '../lib/proc.js';
import { ratioOf, type Row } from '../lib/report.js';
import { flip } from '../lib/runs.js';
import type { Scenario } from '../lib/scenario.js';
import { fmt, summarize } from '../lib/stats.js';
import * as schema from '../../src/db/schema.js';
import { checkRunFilter, countRuns, listRuns } from '../../src/runs/run-queries.js';
import type { RunFilterInput } from '../../src/runs/run-queries.js';

const CLIENTS = 4;
const SECONDS = 4;
const PROJECTS = 20;
const CHILDREN = 10_000;
/** transitionRun calls per second while "writes flowing" is measured. */
const WRITES_PER_SECOND = 50;
/** Runs the writer moves RUNNING ⇄ PROCESSING: this many roots and as many children. */
const WRITER_RUNS = 200;
const TARGET_MS = 20;

/** The project the filtered queries ask for; the parent lives in project c-0. */
const PROJECT = 'c-3';
const PARENT_PROJECT = 'c-0';
const TOTAL_STATUSES = ['RUNNING', 'QUEUED', 'FAILED'] as const;

/**
 * Statuses in percent, as a store of runs looks after a while: most are done, some wait, some
 * work. (No STOPPING, ON_SCHEDULE or timeouts: the reaper would move seeded runs by itself.)
 */
const STATUS_SHARES: [string, number][] = [
  ['SUCCEEDED', 60],
  ['FAILED', 10],
  ['STOPPED', 5],
  ['UPSTREAM_FAILED', 2],
  ['RUNNING', 5],
  ['PROCESSING', 2],
  ['QUEUED', 5],
  ['CREATED', 3],
  ['SCHEDULED', 2],
  ['STARTING', 1],
  ['WARNING', 1],
  ['RETRYING', 1],
  ['SUSPENDED', 1],
  ['UNKNOWN', 1],
  ['SKIPPED', 1],
];
/** A 100-entry run_status[] literal: entry k is the status of the runs with bucket k. */
const STATUS_BUCKETS = `ARRAY[${STATUS_SHARES.flatMap(([s, n]) => Array<string>(n).fill(`'${s}'`)).join(',')}]::run_status[]`;

const RUN_COUNTS_ALL = `query { runCounts { status count } }`;
const RUN_COUNTS_PROJECT = `query($filter: RunFilter) { runCounts(filter: $filter) { status count } }`;
const TOTAL_COUNT = `query($filter: RunFilter) {
  runs(filter: $filter, first: 20) { totalCount edges { cursor } }
}`;
const CHILD_COUNTS = `query($id: ID!) { run(id: $id) { childCounts { status count } } }`;
const TRANSITION = `mutation($id: ID!, $to: RunStatus!) {
  transitionRun(input: { id: $id, to: $to }) { __typename }
}`;

type Client = ReturnType<typeof createGraphQLClient>;
type StatusCount = { status: string; count: number };
type Statement = { query: string; parameters: unknown[] };

interface Probe {
  name: string;
  /** One query through the service; answers its counts (for the correctness check). */
  ask(client: Client): Promise<StatusCount[] | number>;
  /** The SQL runstate sends for it, captured from its own query code. */
  statements: Statement[];
}

/**
 * Seed `total` runs straight into the table: `total - CHILDREN` roots (one of them a parent)
 * over PROJECTS projects and the statuses of STATUS_SHARES, and the parent's CHILDREN steps.
 * Then the counts as the migrations that introduced them write them (0015_pipelines.sql, 0016_child_counts.sql):
 * per (project, is_root, status) and per (parent, status), as of the change log's newest row.
 * Nothing else writes meanwhile.
 */
async function seed(sql: postgres.Sql, total: number, log: (m: string) => void) {
  const roots = total - CHILDREN - 1;
  for (let start = 0; start < roots; start += 100_000) {
    const end = Math.min(roots, start + 100_000) - 1;
    await sql.unsafe(`
      INSERT INTO runs (project, name, status, created_at, updated_at)
      SELECT 'c-' || (i % ${PROJECTS}), 'run-' || i, (${STATUS_BUCKETS})[1 + ((i / ${PROJECTS}) * 37) % 100],
             now() - make_interval(secs => i), now() - make_interval(secs => i)
      FROM generate_series(${start}::int, ${end}::int) AS i`);
    if ((end + 1) % 500_000 === 0) log(`  ${fmt(end + 1, 0)} roots`);
  }
  const [parent] = (await sql`
    INSERT INTO runs (project, name, status) VALUES (${PARENT_PROJECT}, 'pipeline', 'RUNNING')
    RETURNING id`) as unknown as [{ id: string }];
  await sql.unsafe(
    `
    INSERT INTO runs (project, name, status, parent_id, depth, op, created_at, updated_at)
    SELECT $1, 'step-' || i, (${STATUS_BUCKETS})[1 + (i * 37) % 100], $2::uuid, 1, 'step-' || i,
           now() - make_interval(secs => i), now() - make_interval(secs => i)
    FROM generate_series(1, ${CHILDREN}) AS i`,
    [PARENT_PROJECT, parent.id],
  );
  log('  VACUUM ANALYZE runs');
  await sql`VACUUM ANALYZE runs`;
  await sql.begin(async (tx) => {
    await tx`SELECT through_id FROM run_counts_position WHERE id = 1 FOR UPDATE`;
    await tx`DELETE FROM run_counts`;
    await tx`DELETE FROM run_child_counts`;
    await tx`
      INSERT INTO run_counts (project, is_root, status, n)
      SELECT project, parent_id IS NULL, status, count(*) FROM runs GROUP BY 1, 2, 3`;
    await tx`
      INSERT INTO run_child_counts (parent_id, status, n)
      SELECT parent_id, status, count(*) FROM runs WHERE parent_id IS NOT NULL GROUP BY 1, 2`;
    await tx`
      INSERT INTO run_counts_position (id, through_id)
      SELECT 1, coalesce(max(id), 0) FROM status_changes
      ON CONFLICT (id) DO UPDATE SET through_id = excluded.through_id`;
  });
  return parent.id;
}

/** What the runs table says, counted directly (the truth the answers are checked against). */
async function directCounts(sql: postgres.Sql, parentId: string) {
  const asMap = (rows: { status: string; n: number }[]) =>
    new Map(rows.map((r) => [r.status, Number(r.n)]));
  return sql.begin('ISOLATION LEVEL REPEATABLE READ', async (tx) => ({
    all: asMap(await tx`SELECT status, count(*)::int AS n FROM runs GROUP BY status`),
    project: asMap(
      await tx`SELECT status, count(*)::int AS n FROM runs WHERE project = ${PROJECT} GROUP BY status`,
    ),
    total: Number(
      (
        await tx`SELECT count(*)::int AS n FROM runs
                 WHERE project = ${PROJECT} AND status::text = ANY(${[...TOTAL_STATUSES]})`
      )[0]!.n,
    ),
    children: asMap(
      await tx`SELECT status, count(*)::int AS n FROM runs WHERE parent_id = ${parentId} GROUP BY status`,
    ),
  }));
}

/** Every probe's answer against a direct count; the mismatches, described. */
async function check(client: Client, probes: Probe[], sql: postgres.Sql, parentId: string) {
  const truth = await directCounts(sql, parentId);
  const expected: (Map<string, number> | number)[] = [
    truth.all,
    truth.project,
    truth.total,
    truth.children,
  ];
  const wrong: string[] = [];
  for (const [i, probe] of probes.entries()) {
    const answer = await probe.ask(client);
    const want = expected[i]!;
    const got =
      typeof answer === 'number' ? answer : new Map(answer.map((c) => [c.status, c.count]));
    const same =
      typeof want === 'number'
        ? got === want
        : got instanceof Map &&
          got.size === want.size &&
          [...want].every(([status, n]) => got.get(status) === n);
    if (!same) {
      const show = (v: Map<string, number> | number) =>
        typeof v === 'number' ? String(v) : JSON.stringify(Object.fromEntries(v));
      wrong.push(`${probe.name}: answered ${show(got)}, the table has ${show(want)}`);
    }
  }
  return { wrong, runs: [...truth.all.values()].reduce((a, b) => a + b, 0) };
}

/** Change-log rows not yet folded into run_counts (what a count adds at read time). */
async function pendingLogRows(sql: postgres.Sql): Promise<number> {
  const [row] = (await sql`
    SELECT (SELECT coalesce(max(id), 0) FROM status_changes)
         - (SELECT through_id FROM run_counts_position WHERE id = 1) AS n`) as unknown as [
    { n: string },
  ];
  return Number(row.n);
}

/** Checkpoints PostgreSQL has started so far, timed or requested (pg_stat_bgwriter). */
async function checkpointsStarted(sql: postgres.Sql): Promise<number> {
  const [row] = (await sql`
    SELECT checkpoints_timed + checkpoints_req AS n FROM pg_stat_bgwriter`) as unknown as [
    { n: string },
  ];
  return Number(row.n);
}

/** What the service's connections to PostgreSQL are doing now: one label per connection. */
async function connectionStates(sql: postgres.Sql): Promise<string[]> {
  const rows = (await sql`
    SELECT state, wait_event_type, wait_event FROM pg_stat_activity
    WHERE datname = current_database() AND application_name = 'runstate'`) as unknown as {
    state: string | null;
    wait_event_type: string | null;
    wait_event: string | null;
  }[];
  return rows.map((r) =>
    r.state === 'active'
      ? `active${r.wait_event ? ` waiting ${r.wait_event_type}:${r.wait_event}` : ' on CPU'}`
      : (r.state ?? 'unknown'),
  );
}

/** The most frequent labels, with their share of the samples, e.g. "idle 60 %". */
function topShares(labels: string[], samples: number, top = 4): string {
  const counted = new Map<string, number>();
  for (const l of labels) counted.set(l, (counted.get(l) ?? 0) + 1);
  return [...counted]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([l, n]) => `${l} ${fmt(n / samples, 1)}`)
    .join(', ');
}

/**
 * transitionRun through the service at `perSecond`, round robin over `runs` (all RUNNING at
 * first), on its own connections; at most 32 in flight (more is counted as skipped).
 */
function startWriter(url: string, runs: string[], perSecond: number) {
  const client = createGraphQLClient(url, BENCH_TOKEN, 32);
  const status = new Map(runs.map((id) => [id, 'RUNNING']));
  const inflight = new Set<Promise<void>>();
  let sent = 0;
  let next = 0;
  let accepted = 0;
  let refused = 0;
  let skipped = 0;
  const failures: unknown[] = [];
  const latencies: number[] = [];
  const started = performance.now();
  const send = () => {
    const id = runs[next++ % runs.length]!;
    const to = flip(status.get(id)!);
    const t0 = performance.now();
    const request: Promise<void> = client
      .post<{ transitionRun: { __typename: string } }>(TRANSITION, { id, to })
      .then((answer) => {
        latencies.push(performance.now() - t0);
        if (dataOrThrow(answer).transitionRun.__typename === 'TransitionAccepted') {
          status.set(id, to);
          accepted++;
        } else refused++;
      })
      .catch((error: unknown) => void failures.push(error))
      .finally(() => inflight.delete(request));
    inflight.add(request);
  };
  const timer = setInterval(() => {
    const due = Math.floor(((performance.now() - started) / 1000) * perSecond);
    for (; sent < due; sent++) {
      if (inflight.size >= 32) skipped++;
      else send();
    }
  }, 5);
  return {
    async stop() {
      clearInterval(timer);
      await Promise.all([...inflight]);
      client.close();
      if (failures.length) throw new Error(`writer failed: ${String(failures[0])}`);
      return {
        accepted,
        refused,
        skipped,
        seconds: (performance.now() - started) / 1000,
        latency: summarize(latencies),
      };
    },
  };
}

/** Record the SQL a piece of runstate's query code sends, on a bare connection. */
async function capture(url: string, work: (db: never) => Promise<unknown>): Promise<Statement[]> {
  const captured: Statement[] = [];
  const connection = postgres(url, {
    max: 1,
    onnotice: () => {},
    debug: (_c, query, parameters) => captured.push({ query, parameters: parameters as unknown[] }),
  });
  await work(drizzle(connection, { schema }) as never);
  await connection.end();
  return captured.filter((c) => /from "?runs"?\s|run_counts|run_child_counts/i.test(c.query));
}

async function makeProbes(url: string, parentId: string): Promise<Probe[]> {
  const projectFilter: RunFilterInput = { project: PROJECT };
  const totalFilter: RunFilterInput = { project: PROJECT, statuses: [...TOTAL_STATUSES] };
  return [
    {
      name: 'runCounts (all projects)',
      ask: async (client) =>
        dataOrThrow(await client.post<{ runCounts: StatusCount[] }>(RUN_COUNTS_ALL, {})).runCounts,
      statements: await capture(url, (db) => countRuns(db, checkRunFilter('filter', null, null))),
    },
    {
      name: `runCounts (project)`,
      ask: async (client) =>
        dataOrThrow(
          await client.post<{ runCounts: StatusCount[] }>(RUN_COUNTS_PROJECT, {
            filter: projectFilter,
          }),
        ).runCounts,
      statements: await capture(url, (db) =>
        countRuns(db, checkRunFilter('filter', projectFilter, null)),
      ),
    },
    {
      name: 'runs(first: 20) totalCount (project, 3 statuses)',
      ask: async (client) => {
        const answer = dataOrThrow(
          await client.post<{ runs: { totalCount: number; edges: unknown[] } }>(TOTAL_COUNT, {
            filter: totalFilter,
          }),
        );
        if (answer.runs.edges.length !== 20) throw new Error('runs(first: 20): a short page');
        return answer.runs.totalCount;
      },
      statements: await capture(url, async (db) => {
        const connection = await listRuns(db, { filter: totalFilter, first: 20 }, null);
        return connection.totalCount();
      }),
    },
    {
      name: `childCounts (${fmt(CHILDREN, 0)} children)`,
      ask: async (client) => {
        const answer = dataOrThrow(
          await client.post<{ run: { childCounts: StatusCount[] } | null }>(CHILD_COUNTS, {
            id: parentId,
          }),
        );
        if (!answer.run) throw new Error('the parent run is missing');
        return answer.run.childCounts;
      },
      statements: await capture(url, (db) =>
        countRuns(db, { statuses: null, projects: null, parentId } as never),
      ),
    },
  ];
}

/**
 * The server-side time of a probe's statements (EXPLAIN ANALYZE: planning + execution, summed
 * over its statements), the median of 5; and the plans of the last, for BENCH_EXPLAIN=1.
 */
async function explain(sql: postgres.Sql, statements: Statement[]) {
  const times: number[] = [];
  let plans = '';
  for (let i = 0; i < 5; i++) {
    let ms = 0;
    plans = '';
    for (const { query, parameters } of statements) {
      const lines = (await sql.unsafe(
        `EXPLAIN (ANALYZE, BUFFERS) ${query}`,
        parameters as never[],
      )) as unknown as { 'QUERY PLAN': string }[];
      const text = lines.map((l) => l['QUERY PLAN']).join('\n');
      for (const m of text.matchAll(/(?:Planning|Execution) Time: ([\d.]+) ms/g))
        ms += Number(m[1]);
      plans += `${text}\n`;
    }
    times.push(ms);
  }
  return { ms: summarize(times).p50, plans };
}

/** p50 / p95 / p99 in ms. */
const triple = (r: LoadResult) =>
  `${fmt(r.latency.p50, 2)} / ${fmt(r.latency.p95, 2)} / ${fmt(r.latency.p99, 2)}`;

/** Scenario 8: runCounts, totalCount and childCounts at 1,000,000 runs, with and without writes. */
export const counts: Scenario = {
  name: 'counts',
  sizeMeans: `runs stored (default 1,000,000, of which ${fmt(CHILDREN, 0)} are one parent's children)`,
  async run({ clusterUrl, size, log }) {
    const total = Math.max(size ?? 1_000_000, CHILDREN * 2);
    const rows: Row[] = [];
    const notes: string[] = [];
    return withBenchService(clusterUrl, CLIENTS, async ({ databaseUrl, service, client, sql }) => {
      const seedStarted = performance.now();
      log(`seeding ${fmt(total, 0)} runs with SQL`);
      const parentId = await seed(sql, total, log);
      const seedSeconds = (performance.now() - seedStarted) / 1000;
      // The seeding writes WAL enough for several checkpoints: the last one it starts is spread
      // out, and went on writing through both phases (94 s of it, in the server's log). Have
      // PostgreSQL finish it now, and count any that start while measuring (notes).
      log('  CHECKPOINT');
      const settleMs = await settleCluster(clusterUrl);
      const probes = await makeProbes(databaseUrl, parentId);
      const roots = (
        (await sql`
          SELECT id FROM runs WHERE status = 'RUNNING' AND parent_id IS NULL AND id <> ${parentId}
          ORDER BY created_at DESC LIMIT ${WRITER_RUNS}`) as unknown as { id: string }[]
      ).map((r) => r.id);
      const steps = (
        (await sql`
          SELECT id FROM runs WHERE parent_id = ${parentId} AND status = 'RUNNING'
          LIMIT ${WRITER_RUNS}`) as unknown as { id: string }[]
      ).map((r) => r.id);
      // Root and child in turn, so the log after the fold position holds both.
      const interleaved = roots.flatMap((id, i) => (steps[i] ? [id, steps[i]] : [id]));

      const sampler = postgres(databaseUrl, { max: 1, onnotice: () => {} });
      const measure = async (phase: string, writing: boolean) => {
        const checkpointsAtStart = await checkpointsStarted(sampler);
        const pending: number[] = [];
        const states: string[] = [];
        let stateSamples = 0;
        for (const probe of probes) {
          log(`  ${phase}: ${probe.name}, ${CLIENTS} clients`);
          let sampling = true;
          const sampled = (async () => {
            while (sampling) {
              pending.push(await pendingLogRows(sampler));
              states.push(...(await connectionStates(sampler)));
              stateSamples++;
              await new Promise((r) => setTimeout(r, 100));
            }
          })();
          const server = cpuMeter(service.pid);
          const schedAtStart = schedSeconds(service.pid);
          const wallAtStart = performance.now();
          const viaService = await closedLoop({
            clients: CLIENTS,
            seconds: SECONDS,
            operation: async () => void (await probe.ask(client)),
          });
          const serverCpu = server();
          const starved =
            (schedSeconds(service.pid).waiting - schedAtStart.waiting) /
            ((performance.now() - wallAtStart) / 1000);
          sampling = false;
          await sampled;
          const bare = await closedLoop({
            clients: CLIENTS,
            seconds: SECONDS,
            operation: async () => {
              for (const { query, parameters } of probe.statements) {
                await sql.unsafe(query, parameters as never[], { prepare: true });
              }
            },
          });
          const pgTime = await explain(sampler, probe.statements);
          if (process.env.BENCH_EXPLAIN)
            log(`  EXPLAIN ANALYZE (${phase}, ${probe.name}):\n${pgTime.plans}`);
          rows.push({
            measure: `${phase}: ${probe.name}, p50 / p95 / p99 ms`,
            runstate: triple(viaService),
            baseline: triple(bare),
            ratio: ratioOf(viaService.latency.p99, bare.latency.p99),
            target: `p99 ≤ ${TARGET_MS} ms`,
            met: viaService.latency.p99 <= TARGET_MS,
          });
          notes.push(
            `${phase}, ${probe.name}: ${fmt(viaService.perSecond, 0)} queries/s through runstate ` +
              `(service CPU ${fmt(serverCpu.share * 100, 0)} % of a core` +
              (writing
                ? ', writes included'
                : `, ${fmt((serverCpu.share / viaService.perSecond) * 1e6, 0)} µs per query`) +
              `; its main thread runnable but waiting for a CPU ${fmt(starved * 100, 0)} % of the ` +
              `time), ${fmt(bare.perSecond, 0)}/s bare; load generator CPU ` +
              `${fmt(viaService.generatorCpu * 100, 0)} % (service run), ` +
              `${fmt(bare.generatorCpu * 100, 0)} % (baseline run)${writing ? ', writer included' : ''}; ` +
              `PostgreSQL's own time for the statement${probe.statements.length > 1 ? 's' : ''} ` +
              `(EXPLAIN ANALYZE, planning + execution) ${fmt(pgTime.ms, 2)} ms.`,
          );
        }
        return {
          pending: summarize(pending),
          states: topShares(states, stateSamples),
          checkpoints: (await checkpointsStarted(sampler)) - checkpointsAtStart,
        };
      };

      // 1. Writes flowing: the log always holds rows after the fold position.
      log(`writes flowing: transitionRun at ${WRITES_PER_SECOND}/s`);
      const loadAtStart = loadavg()[0]!;
      const writer = startWriter(service.url, interleaved, WRITES_PER_SECOND);
      await new Promise((r) => setTimeout(r, 1500));
      const {
        pending: pendingWriting,
        states: statesWriting,
        checkpoints: checkpointsWriting,
      } = await measure('writes flowing', true);
      const wrote = await writer.stop();
      // Right after the writes, before the reaper folds them: the counts add the log's rows.
      const pendingAfterWrites = await pendingLogRows(sql);
      const afterWrites = await check(client, probes, sql, parentId);
      // Steady state: wait for the fold to reach the log's head.
      const foldStarted = performance.now();
      while ((await pendingLogRows(sql)) > 0) {
        if (performance.now() - foldStarted > 15_000) {
          throw new Error(
            `the change log was not folded within 15 s (${await pendingLogRows(sql)} rows)`,
          );
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      const foldSeconds = (performance.now() - foldStarted) / 1000;
      const folded = await check(client, probes, sql, parentId);
      const {
        pending: pendingQuiet,
        states: statesQuiet,
        checkpoints: checkpointsQuiet,
      } = await measure('steady state', false);

      const loadAtEnd = loadavg()[0]!;
      // What a count costs without the counts table.
      const naive: number[] = [];
      for (let i = 0; i < 3; i++) {
        const t0 = performance.now();
        await sql`SELECT status, count(*) FROM runs GROUP BY status`;
        naive.push(performance.now() - t0);
      }
      await sampler.end({ timeout: 5 });

      const mismatches = [
        ...afterWrites.wrong.map(
          (w) => `right after writes (${pendingAfterWrites} log rows unfolded): ${w}`,
        ),
        ...folded.wrong.map((w) => `after the fold: ${w}`),
      ];
      rows.push({
        measure: 'answers equal a direct count of runs',
        runstate: mismatches.length ? `${mismatches.length} differ` : 'all equal',
        baseline: '–',
        ratio: '–',
        target: 'exact',
        met: mismatches.length === 0,
      });
      notes.unshift(
        `${fmt(afterWrites.runs, 0)} runs in ${PROJECTS} projects (${fmt(total - CHILDREN, 0)} roots, ` +
          `one of them the parent of ${fmt(CHILDREN, 0)} steps), seeded with SQL in ` +
          `${fmt(seedSeconds, 0)} s, counts tables written as migrations 0015 and 0016 do; then a ` +
          `CHECKPOINT (${settleMs == null ? 'not allowed' : `${fmt(settleMs / 1000, 1)} s`}) wrote it out before measuring.`,
        `Writes flowing: ${fmt(wrote.accepted, 0)} transitionRun accepted in ${fmt(wrote.seconds, 0)} s ` +
          `(${fmt(wrote.accepted / wrote.seconds, 0)}/s of ${WRITES_PER_SECOND}/s offered; refused ` +
          `${wrote.refused}, not sent because 32 were in flight ${wrote.skipped}; latency p50 / p99 ` +
          `${fmt(wrote.latency.p50, 1)} / ${fmt(wrote.latency.p99, 1)} ms), ` +
          `over ${fmt(interleaved.length, 0)} runs, roots of every project and the parent's children in turn. ` +
          `Log rows after the fold position while measuring: p50 ${fmt(pendingWriting.p50, 0)}, ` +
          `p99 ${fmt(pendingWriting.p99, 0)}, max ${fmt(pendingWriting.max, 0)}; steady state max ` +
          `${fmt(pendingQuiet.max, 0)}.`,
        `The service's PostgreSQL connections, sampled every 100 ms while it was queried (average number in each state): ` +
          `writes flowing: ${statesWriting}; steady state: ${statesQuiet}.`,
        `Checkpoints PostgreSQL started while measuring (pg_stat_bgwriter): writes flowing ` +
          `${checkpointsWriting}, steady state ${checkpointsQuiet}.`,
        `Exactness, checked against \`SELECT status, count(*) FROM runs …\` at a quiet moment: right ` +
          `after the writes stopped (${pendingAfterWrites} log rows not yet folded) ` +
          `${afterWrites.wrong.length ? '**differ**' : 'all four answers equal'}; after the fold ` +
          `(${fmt(foldSeconds, 1)} s later) ${folded.wrong.length ? '**differ**' : 'all four equal'}.`,
        `Without the counts table, \`SELECT status, count(*) FROM runs GROUP BY status\` takes ` +
          `${fmt(summarize(naive).p50, 0)} ms here (median of 3).`,
        `The machine's 1-minute load average was ${fmt(loadAtStart, 1)} when measuring began and ` +
          `${fmt(loadAtEnd, 1)} when it ended (${cpus().length} cores; other processes share them).`,
      );
      for (const m of mismatches) notes.push(`**${m}**`);
      if (mismatches.length) {
        log(`counts differ from the table:\n  ${mismatches.join('\n  ')}`);
      }
      const report = {
        title: `8. runCounts, totalCount and childCounts at ${fmt(total, 0)} runs`,
        setup:
          `${CLIENTS} clients send one query over HTTP back to back for ${SECONDS} s (after a 1 s ` +
          'warm-up), each in turn: `runCounts` with the admin token (every project), ' +
          `\`runCounts(filter: { project })\`, \`runs(filter: { project, statuses: [3] }, first: 20) ` +
          '{ totalCount edges { cursor } }`, and `run(id: parent) { childCounts }` of a run with ' +
          `${fmt(CHILDREN, 0)} children. First while \`transitionRun\` changes ${WRITES_PER_SECOND} ` +
          'runs/s through the same service (so the change log has rows the reaper has not yet ' +
          'folded into the counts table, which every count adds), then in steady state with no ' +
          'writes. Baseline: the SQL runstate sends for each (captured from its query code: the ' +
          'count statement, and for totalCount also the page), bare and prepared by postgres.js.',
        rows,
        notes,
      };
      if (mismatches.length) {
        throw new Error(`counts are not exact:\n${mismatches.join('\n')}`);
      }
      return report;
    });
  },
};
