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
   * Started when the measured window begins and read when it ends (a process's CPU, say), so
   * that what it reads and the operations counted cover the same span.
   */
  meter?: () => () => M;
}): Promise<LoadResult<M>> {
  const { clients, seconds, operation } = options;
  const warmupMs = (options.warmupSeconds ?? 1) * 1000;
  const start = performance.now();
  const measureFrom = start + warmupMs;
  const end = measureFrom + seconds * 1000;
  let metered: M | undefined;
  let reading: (() => M) | undefined;
  const startMeter = setTimeout(() => (reading = options.meter?.()), warmupMs);
  const stopMeter = setTimeout(() => (metered = reading?.()), warmupMs + seconds * 1000);
  const latencies: number[] = [];
  let cpuAtStart: NodeJS.CpuUsage | null = null;
  await Promise.all(
    Array.from({ length: clients }, async (_, client) => {
      for (let iteration = 0; ; iteration++) {
        const t0 = performance.now();
        if (t0 >= end) return;
        if (t0 >= measureFrom && cpuAtStart == null) cpuAtStart = process.cpuUsage();
        await operation(client, iteration);
        const t1 = performance.now();
        if (t0 >= measureFrom && t1 <= end) latencies.push(t1 - t0);
      }
    }),
  );
  const cpu = process.cpuUsage(cpuAtStart ?? undefined);
  // Should every operation end before the timer read the meter, it is read now.
  clearTimeout(startMeter);
  clearTimeout(stopMeter);
  if (reading && metered === undefined) metered = reading();
  return {
    metered: metered as M,
    operations: latencies.length,
    seconds,
    perSecond: latencies.length / seconds,
    latency: summarize(latencies),
    generatorCpu: (cpu.user + cpu.system) / 1e6 / seconds,
  };
}
