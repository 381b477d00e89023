import { summarize, type Summary } from './stats.js';

export interface LoadResult<M = undefined> {
  operations: number;
  seconds: number;
  perSecond: number;
  latency: Summary;
  /** The load generator's own CPU, as a fraction of one core. */
  generatorCpu: number;
  /** What `meter` read over the measured window (not the warm-up). */
  metered: M;
}

/**
 * `clients` loops, each sending `operation` back to back for `seconds` (after a warm-up that is
 * not counted). Latency is per operation; throughput counts operations completed in the window.
 */
export async function closedLoop<M = undefined>(options: {
  clients: number;
  seconds: number;
  warmupSeconds?: number;
  operation: (client: number, iteration: number) => Promise<void>;
  /**
   * Started when the measured window begins and read when its last operation ends (a process's
   * CPU, say), as the load generator's own CPU is: over the operations counted, not the warm-up.
   */
  meter?: () => () => M;
}): Promise<LoadResult<M>> {
  const { clients, seconds, operation } = options;
  const warmupMs = (options.warmupSeconds ?? 1) * 1000;
  const start = performance.now();
  const measureFrom = start + warmupMs;
  const end = measureFrom + seconds * 1000;
  let reading: (() => M) | undefined;
  const latencies: number[] = [];
  let cpuAtStart: NodeJS.CpuUsage | null = null;
  await Promise.all(
    Array.from({ length: clients }, async (_, client) => {
      for (let iteration = 0; ; iteration++) {
        const t0 = performance.now();
        if (t0 >= end) return;
        if (t0 >= measureFrom && cpuAtStart == null) {
          cpuAtStart = process.cpuUsage();
          reading = options.meter?.();
        }
        await operation(client, iteration);
        const t1 = performance.now();
        if (t0 >= measureFrom && t1 <= end) latencies.push(t1 - t0);
      }
    }),
  );
  const cpu = process.cpuUsage(cpuAtStart ?? undefined);
  return {
    metered: reading?.() as M,
    operations: latencies.length,
    seconds,
    perSecond: latencies.length / seconds,
    latency: summarize(latencies),
    generatorCpu: (cpu.user + cpu.system) / 1e6 / seconds,
  };
}
