import { runBareTransitions } from '../lib/baseline-transition.js';
import { closedLoop } from '../lib/closed-loop.js';
import { withBenchService } from '../lib/environment.js';
import { dataOrThrow } from '../lib/http.js';
import { cpuMeter } from '../lib/proc.js';
import { ratioOf } from '../lib/report.js';
import { createRunningRuns, flip } from '../lib/runs.js';
import type { Scenario } from '../lib/scenario.js';
import { fmt } from '../lib/stats.js';

const CLIENTS = 8;
const BATCH = 100;
const TRANSITIONS = `mutation($inputs: [TransitionRunInput!]!) {
  transitionRuns(inputs: $inputs) { __typename }
}`;

/** Scenario 2: transitionRuns in batches of 100 against the bare single-change transaction. */
export const batches: Scenario = {
  name: 'batches',
  sizeMeans: 'seconds measured (default 6)',
  async run({ clusterUrl, size, log }) {
    const seconds = size ?? 6;
    return withBenchService(clusterUrl, CLIENTS, async ({ service, client, sql }) => {
      const runs = await createRunningRuns(client, 'bench-batches', CLIENTS * BATCH);
      const bareRuns = await createRunningRuns(client, 'bench-baseline', CLIENTS);
      const status = new Map([...runs, ...bareRuns].map((id) => [id, 'RUNNING']));
      let accepted = 0;
      log(`transitionRuns, ${CLIENTS} clients, ${BATCH} changes each`);
      const server = cpuMeter(service.pid);
      const viaService = await closedLoop({
        clients: CLIENTS,
        seconds,
        operation: async (c) => {
          const mine = runs.slice(c * BATCH, (c + 1) * BATCH);
          const inputs = mine.map((id) => ({ id, to: flip(status.get(id)!) }));
          const answer = dataOrThrow(
            await client.post<{ transitionRuns: { __typename: string }[] }>(TRANSITIONS, {
              inputs,
            }),
          );
          answer.transitionRuns.forEach((r, i) => {
            if (r.__typename !== 'TransitionAccepted') throw new Error(`refused: ${r.__typename}`);
            status.set(inputs[i]!.id, inputs[i]!.to);
          });
          accepted += inputs.length;
        },
      });
      const serverCpu = server();
      log(`  bare single-change transaction, ${CLIENTS} clients`);
      const bare = await runBareTransitions({
        sql,
        runs: bareRuns,
        status,
        clients: CLIENTS,
        seconds,
      });
      const changesPerSecond = viaService.perSecond * BATCH;
      const [{ count }] = (await sql`
        SELECT count(*)::int AS count FROM status_changes WHERE project = 'bench-batches'`) as unknown as [
        { count: number },
      ];
      const expected = accepted + 2 * runs.length;
      if (count !== expected) throw new Error(`history holds ${count}, expected ${expected}`);
      return {
        title: '2. transitionRuns in batches of 100',
        setup:
          `${CLIENTS} clients each own ${BATCH} runs and move all of them RUNNING ⇄ PROCESSING ` +
          `with one \`transitionRuns\` of ${BATCH} changes, back to back, for ${seconds} s. ` +
          `Baseline: the bare single-change transaction (as in scenario 1) at ${CLIENTS} clients.`,
        rows: [
          {
            measure: 'changes/s',
            runstate: fmt(changesPerSecond, 0),
            baseline: fmt(bare.perSecond, 0),
            ratio: ratioOf(changesPerSecond, bare.perSecond),
            target: '≥ 3×',
            met: changesPerSecond / bare.perSecond >= 3,
          },
          {
            measure: 'batch latency p50 / p99 ms',
            runstate: `${fmt(viaService.latency.p50, 1)} / ${fmt(viaService.latency.p99, 1)}`,
            baseline: '–',
            ratio: '–',
            target: '–',
            met: null,
          },
        ],
        notes: [
          `Service CPU ${fmt(serverCpu.share * 100, 0)} % of a core; load generator CPU ` +
            `${fmt(viaService.generatorCpu * 100, 0)} % (service run), ${fmt(bare.generatorCpu * 100, 0)} % (baseline run).`,
          `Accepted ${fmt(accepted, 0)} changes; the history holds all of them, once.`,
        ],
      };
    });
  },
};
