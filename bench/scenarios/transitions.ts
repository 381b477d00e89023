import { runBareTransitions } from '../lib/baseline-transition.js';
import { closedLoop, type LoadResult } from '../lib/closed-loop.js';
import { withBenchService } from '../lib/environment.js';
import { dataOrThrow } from '../lib/http.js';
import { cpuMeter } from '../lib/proc.js';
import { ratioOf, type Row } from '../lib/report.js';
import { createRunningRuns, flip } from '../lib/runs.js';
import type { Scenario } from '../lib/scenario.js';
import { fmt } from '../lib/stats.js';

const TRANSITION = `mutation($id: ID!, $to: RunStatus!) {
  transitionRun(input: { id: $id, to: $to }) { __typename ... on TransitionAccepted { change { version } } }
}`;

const LEVELS = [1, 8, 32];

/** Scenario 1: transitionRun over HTTP at 1, 8 and 32 clients against the bare transaction. */
export const transitions: Scenario = {
  name: 'transitions',
  sizeMeans: 'seconds measured per point (default 6)',
  async run({ clusterUrl, size, log }) {
    const seconds = size ?? 6;
    return withBenchService(clusterUrl, Math.max(...LEVELS), async ({ service, client, sql }) => {
      const serviceRuns = await createRunningRuns(client, 'bench-transitions', Math.max(...LEVELS));
      const bareRuns = await createRunningRuns(client, 'bench-baseline', Math.max(...LEVELS));
      const status = new Map([...serviceRuns, ...bareRuns].map((id) => [id, 'RUNNING']));
      let accepted = 0;
      let refused = 0;
      const rows: Row[] = [];
      const notes: string[] = [];
      for (const clients of LEVELS) {
        log(`transitionRun, ${clients} clients`);
        const server = cpuMeter(service.pid);
        const viaService = await closedLoop({
          clients,
          seconds,
          operation: async (c) => {
            const id = serviceRuns[c]!;
            const to = flip(status.get(id)!);
            const answer = dataOrThrow(
              await client.post<{ transitionRun: { __typename: string } }>(TRANSITION, { id, to }),
            );
            if (answer.transitionRun.__typename === 'TransitionAccepted') {
              status.set(id, to);
              accepted++;
            } else refused++;
          },
        });
        const serverCpu = server();
        log(`  bare transaction, ${clients} clients`);
        const bare = await runBareTransitions({ sql, runs: bareRuns, status, clients, seconds });
        rows.push(...rowsFor(clients, viaService, bare));
        notes.push(
          `${clients} clients: service CPU ${fmt(serverCpu.share * 100, 0)} % of a core; load ` +
            `generator CPU ${fmt(viaService.generatorCpu * 100, 0)} % (service run), ` +
            `${fmt(bare.generatorCpu * 100, 0)} % (baseline run).`,
        );
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
      );
      if (count !== expected) throw new Error(`history holds ${count}, expected ${expected}`);
      return {
        title: '1. transitionRun over HTTP',
        setup:
          `Each client owns one run and moves it RUNNING ⇄ PROCESSING with \`transitionRun\` over ` +
          `HTTP (keep-alive), back to back, for ${seconds} s after a 1 s warm-up. Baseline: the ` +
          'same change as a bare postgres.js transaction (UPDATE … WHERE status = $from ' +
          'RETURNING; INSERT into the history; COMMIT), no NOTIFY, the same number of clients.',
        rows,
        notes,
      };
    });
  },
};

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
      target: inTarget ? '≥ 0.6×' : '–',
      met: inTarget ? tpsRatio >= 0.6 : null,
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
