import { buildApp } from '../src/app.js';
import { createPostgresDatabase } from '../src/db/client.js';
import { createLogger } from '../src/logger.js';
import { UNRESTRICTED } from '../src/auth/principal.js';
const database = createPostgresDatabase({ url: process.argv[2]!, poolSize: 20 });
const app = buildApp({
  database,
  logger: createLogger('silent'),
  port: 0,
  host: '127.0.0.1',
  auth: { enabled: false },
});
await app.start();
const runs = app.services.runs;
const ids: string[] = [];
for (let i = 0; i < 8; i++) {
  const r = await runs.createRun({ project: 'p3' }, UNRESTRICTED);
  await runs.transitionRun({ id: r.id, to: 'RUNNING' }, UNRESTRICTED);
  ids.push(r.id);
}
const state = new Map(ids.map((id) => [id, 'RUNNING']));
for (const clients of [1, 8]) {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let n = 0;
  await Promise.all(
    ids.slice(0, clients).map(async (id) => {
      while (performance.now() - t0 < 3000) {
        const to = state.get(id) === 'RUNNING' ? 'PROCESSING' : 'RUNNING';
        const o = await runs.transitionRun({ id, to: to as never }, UNRESTRICTED);
        if (o.__typename !== 'TransitionAccepted') throw new Error(o.__typename);
        state.set(id, to);
        n++;
      }
    }),
  );
  const cpu = process.cpuUsage(cpu0);
  const secs = (performance.now() - t0) / 1000;
  console.log(
    `${clients} clients: ${(n / secs).toFixed(0)}/s, cpu ${((cpu.user + cpu.system) / 1e3 / n).toFixed(2)} ms/op, ${((1000 * clients) / (n / secs)).toFixed(2)} ms latency`,
  );
}
await app.stop();
await database.close();
