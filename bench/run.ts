import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { describeEnvironment, openCluster, settleCluster } from './lib/environment.js';
import { renderScenario, type ScenarioReport } from './lib/report.js';
import type { Scenario } from './lib/scenario.js';
import { batches } from './scenarios/batches.js';
import { counts } from './scenarios/counts.js';
import { allEvents, fanout } from './scenarios/fanout.js';
import { measurements } from './scenarios/measurements.js';
import { queries } from './scenarios/queries.js';
import { startup } from './scenarios/startup.js';
import { transitions } from './scenarios/transitions.js';

/**
 * `npm run bench [-- scenario… --size N --no-build]`: each scenario against its baseline in the
 * same run, on real PostgreSQL, with the service as its own process. Writes bench/RESULTS.md
 * (a run of named scenarios: bench/RESULTS-partial.md).
 */
const SCENARIOS: Scenario[] = [
  transitions,
  batches,
  fanout,
  allEvents,
  measurements,
  queries,
  startup,
  counts,
];

function parseArgs(argv: string[]) {
  const names: string[] = [];
  let size: number | undefined;
  let build = true;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--size') size = Number(argv[++i]);
    else if (arg === '--no-build') build = false;
    else if (arg === '--help' || arg === '-h') {
      console.log(
        'npm run bench -- [scenario …] [--size N] [--no-build]\n\nscenarios:\n' +
          SCENARIOS.map((s) => `  ${s.name.padEnd(14)} size: ${s.sizeMeans}`).join('\n'),
      );
      process.exit(0);
    } else names.push(arg);
  }
  if (size !== undefined && !(size > 0)) throw new Error('--size needs a positive number');
  const unknown = names.filter((n) => !SCENARIOS.some((s) => s.name === n));
  if (unknown.length > 0) throw new Error(`unknown scenario(s): ${unknown.join(', ')}`);
  return { names, size, build };
}

async function main() {
  const { names, size, build } = parseArgs(process.argv.slice(2));
  const selected = names.length ? SCENARIOS.filter((s) => names.includes(s.name)) : SCENARIOS;
  if (size !== undefined && selected.length !== 1) {
    throw new Error('--size applies to one scenario: name it');
  }
  if (build) execFileSync('npm', ['run', 'build', '--silent'], { stdio: 'inherit' });
  const cluster = await openCluster();
  const started = Date.now();
  const log = (message: string) =>
    console.log(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${message}`);
  try {
    const environment = await describeEnvironment(cluster.url, cluster.embedded);
    const reports: ScenarioReport[] = [];
    for (const scenario of selected) {
      // Each scenario starts with nothing left for PostgreSQL to write from the one before.
      const settled = await settleCluster(cluster.url);
      log(
        `scenario ${scenario.name}` +
          (settled == null ? '' : ` (after a CHECKPOINT of ${settled.toFixed(0)} ms)`),
      );
      reports.push(await scenario.run({ clusterUrl: cluster.url, size, log }));
    }
    const markdown = [
      '# runstate benchmarks',
      '',
      `Written by \`npm run bench${names.length ? ` -- ${process.argv.slice(2).join(' ')}` : ''}\` ` +
        `on ${new Date().toISOString()}, in ${Math.round((Date.now() - started) / 1000)} s. ` +
        'Every figure is measured in this run beside its baseline; the targets are those of ' +
        'the design (benchmarks.md). The load generator runs on the same machine: its CPU ' +
        'share is given with each scenario. Each scenario starts after a CHECKPOINT, so ' +
        'PostgreSQL is not still writing out the one before.',
      '',
      `- machine: ${environment.machine}`,
      `- Node.js: ${environment.node}`,
      `- PostgreSQL: ${environment.postgres}`,
      `- settings: ${environment.settings}`,
      '',
      ...reports.map(renderScenario),
    ].join('\n');
    // The committed RESULTS.md is the whole run's: a run of some scenarios must not replace it.
    const file = names.length ? 'RESULTS-partial.md' : 'RESULTS.md';
    writeFileSync(new URL(`./${file}`, import.meta.url), markdown);
    console.log(`\n${markdown}\n\nwritten to bench/${file}`);
  } finally {
    await cluster.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
