import { closedLoop } from '../lib/closed-loop.js';
import { withBenchService } from '../lib/environment.js';
import { dataOrThrow } from '../lib/http.js';
import { cpuMeter } from '../lib/proc.js';
import { ratioOf } from '../lib/report.js';
import { createRunningRuns } from '../lib/runs.js';
import type { Scenario } from '../lib/scenario.js';
import { fmt } from '../lib/stats.js';

const CLIENTS = 4;
const BATCH = 1000;
const RECORD = `mutation($input: RecordMeasurementsInput!) { recordMeasurements(input: $input) }`;

function points(iteration: number) {
  return Array.from({ length: BATCH }, (_, i) => ({
    name: i % 2 ? 'loss' : 'accuracy',
    value: Math.random(),
    step: iteration * BATCH + i,
  }));
}

/** Scenario 5: recordMeasurements in batches of 1,000 against a bare multi-row INSERT. */
export const measurements: Scenario = {
  name: 'measurements',
  sizeMeans: 'seconds measured (default 6)',
  async run({ clusterUrl, size, log }) {
    const seconds = size ?? 6;
    return withBenchService(clusterUrl, CLIENTS, async ({ service, client, sql }) => {
      const runs = await createRunningRuns(client, 'bench-measurements', CLIENTS);
      const bareRuns = await createRunningRuns(client, 'bench-baseline', CLIENTS);
      let written = 0;
      log(`recordMeasurements, ${CLIENTS} clients, ${BATCH} points each`);
      const server = cpuMeter(service.pid);
      const viaService = await closedLoop({
        clients: CLIENTS,
        seconds,
        operation: async (c, iteration) => {
          const answer = dataOrThrow(
            await client.post<{ recordMeasurements: number }>(RECORD, {
              input: { runId: runs[c], measurements: points(iteration) },
            }),
          );
          written += answer.recordMeasurements;
        },
      });
      const serverCpu = server();
      log(`  bare multi-row INSERT, ${CLIENTS} clients`);
      const bare = await closedLoop({
        clients: CLIENTS,
        seconds,
        operation: async (c, iteration) => {
          const rows = points(iteration).map((p) => ({ run_id: bareRuns[c]!, ...p }));
          await sql`INSERT INTO measurements ${sql(rows, 'run_id', 'name', 'value', 'step')}`;
        },
      });
      const [{ count }] = (await sql`
        SELECT count(*)::int AS count FROM measurements WHERE run_id IN ${sql(runs)}`) as unknown as [
        { count: number },
      ];
      if (count !== written) throw new Error(`stored ${count} points, answered ${written}`);
      const servicePoints = viaService.perSecond * BATCH;
      const barePoints = bare.perSecond * BATCH;
      return {
        title: '5. recordMeasurements in batches of 1,000',
        setup:
          `${CLIENTS} clients each record batches of ${BATCH} points on their own run with ` +
          `\`recordMeasurements\`, back to back, for ${seconds} s. Baseline: the same rows as one ` +
          'bare multi-row INSERT per batch (postgres.js), the same number of clients.',
        rows: [
          {
            measure: 'points/s',
            runstate: fmt(servicePoints, 0),
            baseline: fmt(barePoints, 0),
            ratio: ratioOf(servicePoints, barePoints),
            target: '≥ 0.5×',
            met: servicePoints / barePoints >= 0.5,
          },
          {
            measure: 'batch p50 / p99 ms',
            runstate: `${fmt(viaService.latency.p50, 1)} / ${fmt(viaService.latency.p99, 1)}`,
            baseline: `${fmt(bare.latency.p50, 1)} / ${fmt(bare.latency.p99, 1)}`,
            ratio: '–',
            target: '–',
            met: null,
          },
        ],
        notes: [
          `Service CPU ${fmt(serverCpu.share * 100, 0)} % of a core; load generator CPU ` +
            `${fmt(viaService.generatorCpu * 100, 0)} % (service run), ${fmt(bare.generatorCpu * 100, 0)} % (baseline run).`,
          `Answered ${fmt(written, 0)} points written; the table holds exactly that many.`,
        ],
      };
    });
  },
};
