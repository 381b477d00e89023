import { closedLoop } from './lib/closed-loop.js';
import { BENCH_TOKEN, createBenchDatabase, startService } from './lib/environment.js';
import { createGraphQLClient, dataOrThrow } from './lib/http.js';
import { cpuMeter } from './lib/proc.js';
import { createRunningRuns, flip } from './lib/runs.js';
const db = await createBenchDatabase('postgres://postgres@127.0.0.1:5432/postgres');
const svc = await startService(db.url);
const c = createGraphQLClient(svc.url, BENCH_TOKEN, 8);
const runs = await createRunningRuns(c, 'p', 8);
const st = new Map(runs.map((id) => [id, 'RUNNING']));
const query = process.argv[2] ?? 'transition';
const m = cpuMeter(svc.pid);
const r = await closedLoop({
  clients: 8,
  seconds: 6,
  operation: async (i) => {
    if (query === 'viewer') {
      dataOrThrow(await c.post('{ viewer { name } }', {}));
      return;
    }
    if (query === 'run') {
      dataOrThrow(await c.post('query($id: ID!) { run(id: $id) { status } }', { id: runs[i] }));
      return;
    }
    if (query === 'progress') {
      dataOrThrow(
        await c.post(
          'mutation($id: ID!) { reportProgress(input: { id: $id, progress: 0.5 }) { id } }',
          { id: runs[i] },
        ),
      );
      return;
    }
    const id = runs[i]!;
    const to = flip(st.get(id)!);
    const a = dataOrThrow(
      await c.post<{ transitionRun: { __typename: string } }>(
        'mutation($id: ID!, $to: RunStatus!) { transitionRun(input: { id: $id, to: $to }) { __typename ... on TransitionAccepted { change { version } } } }',
        { id, to },
      ),
    );
    if (a.transitionRun.__typename !== 'TransitionAccepted') throw new Error('x');
    st.set(id, to);
  },
});
const cpu = m();
console.log(
  query,
  r.perSecond.toFixed(0),
  '/s',
  'p50',
  r.latency.p50.toFixed(2),
  'service cpu',
  (cpu.share * 100).toFixed(0),
  '%',
  ((cpu.cpuSeconds * 1000) / r.operations).toFixed(2),
  'ms/op; generator',
  (r.generatorCpu * 100).toFixed(0),
  '%',
);
c.close();
await svc.stop();
await db.drop();
