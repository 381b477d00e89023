import { spawn } from 'node:child_process';
import postgres from 'postgres';
import {
  BENCH_TOKEN,
  createBenchDatabase,
  spawnAndWaitForUrl,
  startService,
  type ServiceProcess,
} from '../lib/environment.js';
import { createGraphQLClient, dataOrThrow } from '../lib/http.js';
import { cpuMeter, rssBytes } from '../lib/proc.js';
import { ratioOf, type Row } from '../lib/report.js';
import { flip } from '../lib/runs.js';
import type { Scenario } from '../lib/scenario.js';
import { fmt, summarize } from '../lib/stats.js';
import { openSubscribers } from '../lib/subscribers.js';

const root = new URL('../..', import.meta.url).pathname;

interface Change {
  runId: string;
  version: number;
  to: string;
}

/** Either side of a fan-out comparison: how to subscribe, and how to commit changes. */
interface Target {
  name: string;
  process: ServiceProcess;
  token: string | null;
  runs: string[];
  perRun(runId: string): { query: string; variables: Record<string, unknown> };
  all: { query: string };
  /**
   * Commit the next change of each of these runs; answers the changes made. (Under a backlog,
   * two requests for one run may be applied in the other order: the second is then a no-op,
   * which is not a change, and not counted.)
   */
  change(runIds: string[]): Promise<Change[]>;
  stop(): Promise<void>;
}

type RunStates = Map<string, { status: string; version: number }>;

/** Runs as they start: RUNNING at version 1. */
function runningAt(runs: readonly string[]): RunStates {
  return new Map(runs.map((id) => [id, { status: 'RUNNING', version: 1 }]));
}

/** The next change of each run (RUNNING ⇄ PROCESSING), recorded as its state. */
function nextChanges(state: RunStates, runIds: readonly string[]): Change[] {
  return runIds.map((runId) => {
    const current = state.get(runId)!;
    const change = { runId, version: current.version + 1, to: flip(current.status) };
    state.set(runId, { status: change.to, version: change.version });
    return change;
  });
}

async function runstateTarget(clusterUrl: string, runCount: number): Promise<Target> {
  const database = await createBenchDatabase(clusterUrl);
  const sql = postgres(database.url, { max: 2, onnotice: () => {} });
  const rows = (await sql`
    INSERT INTO runs (project, status) SELECT 'bench-fanout', 'RUNNING' FROM generate_series(1, ${runCount})
    RETURNING id`) as unknown as { id: string }[];
  await sql.end();
  const runs = rows.map((r) => r.id);
  const state = runningAt(runs);
  const process = await startService(database.url, { SUBSCRIBER_BUFFER: '100000' });
  const client = createGraphQLClient(process.url, BENCH_TOKEN, 64);
  return {
    name: 'runstate',
    process,
    token: BENCH_TOKEN,
    runs,
    perRun: (runId) => ({
      query: `subscription($id: ID!) { statusChanged(filter: { runIds: [$id] }) { runId version to } }`,
      variables: { id: runId },
    }),
    all: { query: `subscription { statusChanged { runId version to } }` },
    async change(runIds) {
      const changes = nextChanges(state, runIds);
      const answer = dataOrThrow(
        await client.post<{
          transitionRuns: { __typename: string; change?: { version: number } | null }[];
        }>(
          `mutation($inputs: [TransitionRunInput!]!) {
            transitionRuns(inputs: $inputs) { __typename ... on TransitionAccepted { change { version } } }
          }`,
          { inputs: changes.map((c) => ({ id: c.runId, to: c.to })) },
        ),
      );
      if (answer.transitionRuns.some((r) => r.__typename !== 'TransitionAccepted')) {
        throw new Error('a benchmark change was refused');
      }
      return changes.filter((_, i) => answer.transitionRuns[i]!.change != null);
    },
    async stop() {
      client.close();
      await process.stop();
      await database.drop();
    },
  };
}

async function bareTarget(runCount: number): Promise<Target> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'bench/baseline/bare-fanout-server.ts'],
    {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const server = await spawnAndWaitForUrl(child, /"url":"(http:[^"]+)"/);
  const client = createGraphQLClient(server.url, 'none', 64);
  const runs = Array.from({ length: runCount }, (_, i) => `run-${i}`);
  const state = runningAt(runs);
  return {
    name: 'bare yoga + graphql-ws',
    process: server,
    token: null,
    runs,
    perRun: (runId) => ({
      query: `subscription($id: ID!) { changed(runId: $id) { runId version to } }`,
      variables: { id: runId },
    }),
    all: { query: `subscription { changed { runId version to } }` },
    async change(runIds) {
      const changes = nextChanges(state, runIds);
      dataOrThrow(
        await client.post(`mutation($c: [ChangeInput!]!) { publish(changes: $c) }`, { c: changes }),
      );
      return changes;
    },
    async stop() {
      client.close();
      await server.stop();
    },
  };
}

/** Send changes at a fixed rate (open loop: a slow target does not slow the schedule). */
async function commitAtRate(
  target: Target,
  perSecond: number,
  seconds: number,
  pick: (i: number) => string,
  onSent: (runId: string, at: number) => void,
): Promise<{ committed: number; maxInFlight: number; commitLatency: number[] }> {
  const tickMs = 10;
  const perTick = (perSecond * tickMs) / 1000;
  const start = performance.now();
  const inFlight = new Set<Promise<void>>();
  let maxInFlight = 0;
  let committed = 0;
  const commitLatency: number[] = [];
  let carry = 0;
  let next = 0;
  for (let tick = 0; tick < (seconds * 1000) / tickMs; tick++) {
    const due = start + tick * tickMs - performance.now();
    if (due > 0) await new Promise((resolve) => setTimeout(resolve, due));
    carry += perTick;
    const count = Math.floor(carry);
    carry -= count;
    if (count === 0) continue;
    const runIds = Array.from({ length: count }, () => pick(next++));
    const sentAt = performance.now();
    const request = target.change(runIds).then((changes) => {
      committed += changes.length;
      commitLatency.push(performance.now() - sentAt);
    });
    // Latency is counted from the moment the request leaves, which includes the commit.
    for (const runId of runIds) onSent(runId, sentAt);
    const tracked: Promise<void> = request.finally(() => inFlight.delete(tracked));
    inFlight.add(tracked);
    maxInFlight = Math.max(maxInFlight, inFlight.size);
  }
  await Promise.all(inFlight);
  return { committed, maxInFlight, commitLatency };
}

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

interface PerRunResult {
  latency: ReturnType<typeof summarize>;
  committed: number;
  delivered: number;
  rssPerSubscriber: number;
  serverCpu: number;
  generatorCpu: number;
  maxInFlight: number;
  commit: ReturnType<typeof summarize>;
}

async function measurePerRun(
  target: Target,
  subscribers: number,
  perSecond: number,
  seconds: number,
  log: (m: string) => void,
): Promise<PerRunResult> {
  const runs = target.runs.slice(0, subscribers);
  const received = new Array<number>(subscribers).fill(0);
  const sentAt = new Map<string, number[]>();
  const latencies: number[] = [];
  let measuring = false;
  const rssBefore = rssBytes(target.process.pid);
  log(`  ${target.name}: ${fmt(subscribers, 0)} per-run subscribers`);
  const pool = await openSubscribers({
    wsUrl: target.process.wsUrl,
    token: target.token,
    count: subscribers,
    perConnection: 100,
    operation: (i) => target.perRun(runs[i]!),
    onNext: (index, data) => {
      received[index]!++;
      if (!measuring) return;
      const event = Object.values(data)[0] as { runId: string };
      const queue = sentAt.get(event.runId);
      const at = queue?.shift();
      if (at !== undefined) latencies.push(performance.now() - at);
    },
  });
  // Every subscription live: one change per run, each seen by its subscriber.
  for (let i = 0; i < runs.length; i += 200) await target.change(runs.slice(i, i + 200));
  const live = await waitFor(() => received.every((n) => n >= 1), 60_000);
  if (!live) throw new Error(`${target.name}: not every subscriber received its first change`);
  const rssPerSubscriber = (rssBytes(target.process.pid) - rssBefore) / subscribers;
  received.fill(0);
  measuring = true;
  log(`  ${target.name}: ${fmt(perSecond, 0)} changes/s for ${seconds} s`);
  const server = cpuMeter(target.process.pid);
  const cpuStart = process.cpuUsage();
  const wall = performance.now();
  const { committed, maxInFlight, commitLatency } = await commitAtRate(
    target,
    perSecond,
    seconds,
    (i) => runs[i % runs.length]!,
    (runId, at) => {
      const queue = sentAt.get(runId) ?? [];
      queue.push(at);
      sentAt.set(runId, queue);
    },
  );
  const total = () => received.reduce((a, b) => a + b, 0);
  await waitFor(() => total() >= committed, 15_000);
  const serverCpu = server().share;
  const generator = process.cpuUsage(cpuStart);
  const generatorCpu = (generator.user + generator.system) / 1000 / (performance.now() - wall);
  await pool.close();
  return {
    latency: summarize(latencies),
    committed,
    delivered: total(),
    rssPerSubscriber,
    serverCpu,
    generatorCpu,
    maxInFlight,
    commit: summarize(commitLatency),
  };
}

/** Scenario 3: per-run subscribers while changes commit at 1,000/s. */
export const fanout: Scenario = {
  name: 'fanout',
  sizeMeans:
    'per-run subscribers (default 10,000: the target in benchmarks.md; this machine allows it)',
  async run({ clusterUrl, size, log }) {
    const subscribers = size ?? 10_000;
    const perSecond = 1_000;
    const seconds = 10;
    const results: PerRunResult[] = [];
    for (const make of [
      () => runstateTarget(clusterUrl, subscribers),
      () => bareTarget(subscribers),
    ]) {
      const target = await make();
      try {
        results.push(await measurePerRun(target, subscribers, perSecond, seconds, log));
      } finally {
        await target.stop();
      }
    }
    const [service, bare] = results as [PerRunResult, PerRunResult];
    const rows: Row[] = [
      {
        measure: 'latency p50 / p99 / max ms',
        runstate: `${fmt(service.latency.p50, 1)} / ${fmt(service.latency.p99, 1)} / ${fmt(service.latency.max, 1)}`,
        baseline: `${fmt(bare.latency.p50, 1)} / ${fmt(bare.latency.p99, 1)} / ${fmt(bare.latency.max, 1)}`,
        ratio: ratioOf(service.latency.p99, bare.latency.p99),
        target: 'p99 ≤ 50 ms',
        met: service.latency.p99 <= 50,
      },
      {
        measure: 'delivered / committed',
        runstate: `${fmt(service.delivered, 0)} / ${fmt(service.committed, 0)}`,
        baseline: `${fmt(bare.delivered, 0)} / ${fmt(bare.committed, 0)}`,
        ratio: '–',
        target: 'nothing lost',
        met: service.delivered === service.committed,
      },
      {
        measure: 'server memory per subscriber',
        runstate: `${fmt(service.rssPerSubscriber / 1024, 1)} KB`,
        baseline: `${fmt(bare.rssPerSubscriber / 1024, 1)} KB`,
        ratio: ratioOf(service.rssPerSubscriber, bare.rssPerSubscriber),
        target: '≤ 40 KB',
        met: service.rssPerSubscriber <= 40 * 1024,
      },
    ];
    return {
      title: `3. Fan-out to ${fmt(subscribers, 0)} per-run subscribers`,
      setup:
        `${fmt(subscribers, 0)} graphql-ws subscriptions (100 per connection), each to one run ` +
        `(\`statusChanged(filter: { runIds: [$id] })\`), while changes commit at ${fmt(perSecond, 0)}/s ` +
        `for ${seconds} s (\`transitionRuns\`, every 10 ms). Latency runs from the moment the ` +
        'writing request leaves to the moment the subscriber has the event, so it includes the ' +
        'commit. Memory is the server’s RSS growth per subscriber once all are live. Baseline: ' +
        'a bare graphql-yoga + graphql-ws server with an in-memory pub/sub, fed the same changes ' +
        'through a mutation.',
      rows,
      notes: [
        `Server CPU ${fmt(service.serverCpu * 100, 0)} % of a core (baseline ` +
          `${fmt(bare.serverCpu * 100, 0)} %); load generator CPU ${fmt(service.generatorCpu * 100, 0)} % ` +
          `(baseline run ${fmt(bare.generatorCpu * 100, 0)} %).`,
        `Writing requests (10 changes each): p50 / p99 ${fmt(service.commit.p50, 1)} / ` +
          `${fmt(service.commit.p99, 1)} ms until answered, at most ${service.maxInFlight} in flight ` +
          `(baseline ${fmt(bare.commit.p50, 1)} / ${fmt(bare.commit.p99, 1)} ms, ${bare.maxInFlight}).`,
      ],
    };
  },
};

interface AllEventsResult {
  committed: number;
  delivered: number;
  perSecond: number;
  cpuPerMessageUs: number;
  serverCpu: number;
  generatorCpu: number;
  /** Seconds after the sending window until every message had arrived. */
  drainSeconds: number;
}

async function measureAllEvents(
  target: Target,
  subscribers: number,
  changesPerSecond: number,
  seconds: number,
  log: (m: string) => void,
): Promise<AllEventsResult> {
  let received = 0;
  log(`  ${target.name}: ${fmt(subscribers, 0)} all-events subscribers`);
  const pool = await openSubscribers({
    wsUrl: target.process.wsUrl,
    token: target.token,
    count: subscribers,
    perConnection: 1,
    operation: () => target.all,
    onNext: () => {
      received++;
    },
  });
  await target.change([target.runs[0]!]);
  if (!(await waitFor(() => received >= subscribers, 60_000))) {
    throw new Error(`${target.name}: not every all-events subscriber is live`);
  }
  received = 0;
  log(`  ${target.name}: ${fmt(changesPerSecond, 0)} changes/s for ${seconds} s`);
  // Capacity is what is delivered, and the CPU it took, while changes come in at the offered
  // rate; what is still queued then must arrive afterwards (nothing lost).
  const server = cpuMeter(target.process.pid);
  const cpuStart = process.cpuUsage();
  const wall = performance.now();
  const { committed } = await commitAtRate(
    target,
    changesPerSecond,
    seconds,
    (i) => target.runs[i % target.runs.length]!,
    () => {},
  );
  const elapsed = (performance.now() - wall) / 1000;
  const deliveredInWindow = received;
  const cpu = server();
  const generator = process.cpuUsage(cpuStart);
  const drainStart = performance.now();
  await waitFor(() => received >= committed * subscribers, 180_000);
  const drainSeconds = (performance.now() - drainStart) / 1000;
  await pool.close();
  return {
    committed,
    delivered: received,
    perSecond: deliveredInWindow / elapsed,
    cpuPerMessageUs: (cpu.cpuSeconds * 1e6) / deliveredInWindow,
    serverCpu: cpu.share,
    generatorCpu: (generator.user + generator.system) / 1e6 / elapsed,
    drainSeconds,
  };
}

/** Scenario 4: every change to every subscriber. */
export const allEvents: Scenario = {
  name: 'all-events',
  sizeMeans: 'all-events subscribers (default 1,000)',
  async run({ clusterUrl, size, log }) {
    const subscribers = size ?? 1_000;
    const changesPerSecond = 50;
    const seconds = 10;
    const results: AllEventsResult[] = [];
    for (const make of [() => runstateTarget(clusterUrl, 1_000), () => bareTarget(1_000)]) {
      const target = await make();
      try {
        results.push(await measureAllEvents(target, subscribers, changesPerSecond, seconds, log));
      } finally {
        await target.stop();
      }
    }
    const [service, bare] = results as [AllEventsResult, AllEventsResult];
    return {
      title: `4. All-events fan-out to ${fmt(subscribers, 0)} subscribers`,
      setup:
        `${fmt(subscribers, 0)} graphql-ws connections each subscribed to every change ` +
        `(\`statusChanged\` without a filter) while ${changesPerSecond} changes/s commit for ` +
        `${seconds} s: ${fmt(changesPerSecond * subscribers, 0)} messages/s offered. Server CPU ` +
        'per delivered message is the server process’s CPU time over the window divided by the ' +
        'messages delivered in it; the count of everything delivered is taken once all has ' +
        'arrived. Baseline: the bare yoga + graphql-ws server of scenario 3.',
      rows: [
        {
          measure: 'delivered messages/s',
          runstate: fmt(service.perSecond, 0),
          baseline: fmt(bare.perSecond, 0),
          ratio: ratioOf(service.perSecond, bare.perSecond),
          target: '≥ 30,000/s',
          met: service.perSecond >= 30_000,
        },
        {
          measure: 'server CPU per delivered message',
          runstate: `${fmt(service.cpuPerMessageUs, 1)} µs`,
          baseline: `${fmt(bare.cpuPerMessageUs, 1)} µs`,
          ratio: ratioOf(service.cpuPerMessageUs, bare.cpuPerMessageUs),
          target: '≤ 20 µs',
          met: service.cpuPerMessageUs <= 20,
        },
        {
          measure: 'delivered / committed × subscribers',
          runstate: `${fmt(service.delivered, 0)} / ${fmt(service.committed * subscribers, 0)}`,
          baseline: `${fmt(bare.delivered, 0)} / ${fmt(bare.committed * subscribers, 0)}`,
          ratio: '–',
          target: 'nothing lost',
          met: service.delivered === service.committed * subscribers,
        },
      ],
      notes: [
        `Server CPU ${fmt(service.serverCpu * 100, 0)} % of a core (baseline ${fmt(bare.serverCpu * 100, 0)} %); ` +
          `load generator CPU ${fmt(service.generatorCpu * 100, 0)} % (baseline run ${fmt(bare.generatorCpu * 100, 0)} %), ` +
          'both over the sending window.',
        `After the window, the last messages arrived ${fmt(service.drainSeconds, 1)} s later ` +
          `(baseline ${fmt(bare.drainSeconds, 1)} s): what a server cannot deliver at once waits ` +
          'in its subscribers’ buffers.',
      ],
    };
  },
};
