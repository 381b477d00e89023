import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BENCH_TOKEN, spawnAndWaitForUrl } from '../lib/environment.js';
import { ratioOf } from '../lib/report.js';
import type { Scenario } from '../lib/scenario.js';
import { fmt, summarize } from '../lib/stats.js';

const root = new URL('../..', import.meta.url).pathname;

/** Seconds from spawning the built service on the embedded database until /health answers. */
async function timeStart(dataDir: string): Promise<number> {
  const started = performance.now();
  const child = spawn(process.execPath, ['dist/src/main.js'], {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '',
      PORT: '0',
      HOST: '127.0.0.1',
      RUNSTATE_DATA_DIR: dataDir,
      RUNSTATE_ADMIN_TOKEN: BENCH_TOKEN,
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const service = await spawnAndWaitForUrl(child, /"url":"(http:[^"]+)"/);
  const health = await fetch(new URL('/health', service.url));
  const seconds = (performance.now() - started) / 1000;
  await service.stop();
  if (!health.ok) throw new Error(`/health answered ${health.status}`);
  return seconds;
}

/** Node starting and PGlite opening (and, the first time, creating) a database directory. */
async function timeBarePglite(dataDir: string): Promise<number> {
  const started = performance.now();
  const script =
    "import('@electric-sql/pglite').then(async ({ PGlite }) => {" +
    ` const db = await PGlite.create(${JSON.stringify(dataDir)}); await db.query('SELECT 1');` +
    ' await db.close(); })';
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], { cwd: root, stdio: 'ignore' });
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`exit ${code}`))));
  });
  return (performance.now() - started) / 1000;
}

/** Start-up to ready on the embedded database, first start and restart. */
export const startup: Scenario = {
  name: 'startup',
  sizeMeans: 'repetitions (default 3)',
  async run({ size, log }) {
    const repetitions = size ?? 3;
    const first: number[] = [];
    const again: number[] = [];
    const bareFirst: number[] = [];
    const bareAgain: number[] = [];
    for (let i = 0; i < repetitions; i++) {
      log(`start-up ${i + 1} of ${repetitions}`);
      for (const [measure, into, intoAgain] of [
        [timeStart, first, again],
        [timeBarePglite, bareFirst, bareAgain],
      ] as const) {
        const dir = mkdtempSync(join(tmpdir(), 'runstate-bench-start-'));
        try {
          into.push(await measure(dir));
          intoAgain.push(await measure(dir));
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      }
    }
    const median = (xs: number[]) => summarize(xs).p50;
    const row = (measure: string, ours: number[], bare: number[]) => ({
      measure,
      runstate: fmt(median(ours), 2),
      baseline: fmt(median(bare), 2),
      ratio: ratioOf(median(ours), median(bare)),
      target: '≤ 3 s',
      met: median(ours) <= 3,
    });
    return {
      title: '7. Start-up to ready on the embedded database',
      setup:
        'The built service (`node dist/src/main.js`) with no DATABASE_URL, in an empty data ' +
        'directory (first start) and again in the same directory (restart), timed from ' +
        `spawning the process until \`/health\` answers; the median of ${repetitions}. A first ` +
        'start copies the migrated, empty data directory `npm run build` made ' +
        '(dist/pglite-template) and opens it, instead of having PGlite create one and ' +
        'migrating it. Baseline: a bare Node process in which PGlite creates (first) or opens ' +
        '(restart) its database and runs one query.',
      rows: [row('first start, s', first, bareFirst), row('restart, s', again, bareAgain)],
      notes: [
        `All first starts: ${first.map((s) => fmt(s, 2)).join(', ')} s; restarts: ` +
          `${again.map((s) => fmt(s, 2)).join(', ')} s.`,
      ],
    };
  },
};
