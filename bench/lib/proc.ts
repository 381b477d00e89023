import { readdirSync, readFileSync } from 'node:fs';

/** CPU and memory of a process, read from /proc (Linux). */

const TICKS_PER_SECOND = 100;

/** User + system CPU seconds used by a process so far. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** Resident memory of a process, in bytes. */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1];
  return Number(kb) * 1024;
}

/** CPU share of a process over a span: a fraction of one core (1 = one core busy). */
export function cpuMeter(pid: number) {
  const startCpu = cpuSeconds(pid);
  const startWall = performance.now();
  return () => {
    const cpu = cpuSeconds(pid) - startCpu;
    const wall = (performance.now() - startWall) / 1000;
    return { cpuSeconds: cpu, share: cpu / wall };
  };
}

/**
 * A process's main thread (for Node: the one running JavaScript): seconds on a CPU and seconds
 * runnable but waiting for one (the run queue), so far. From /proc/<pid>/schedstat (Linux).
 */
export function schedSeconds(pid: number): { running: number; waiting: number } {
  const [running, waiting] = readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ').map(Number);
  return { running: running! / 1e9, waiting: waiting! / 1e9 };
}

/**
 * CPU seconds used so far by every PostgreSQL process on this machine (`comm` = postgres): the
 * server's backends and its helpers. Backends that exit in between take their time with them, so
 * measure over spans in which the pools keep their connections.
 */
export function postgresCpuSeconds(): number {
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // gone since the listing
    }
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    if (comm !== 'postgres') continue;
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    total += (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  }
  return total;
}

/** PostgreSQL's CPU over a span, as `cpuMeter` gives it for one process. */
export function postgresCpuMeter() {
  const startCpu = postgresCpuSeconds();
  const startWall = performance.now();
  return () => {
    const cpu = postgresCpuSeconds() - startCpu;
    const wall = (performance.now() - startWall) / 1000;
    return { cpuSeconds: cpu, share: cpu / wall };
  };
}

/** Seconds the service's garbage collector has paused it so far, by kind (from its /metrics). */
async function gcSeconds(serviceUrl: string): Promise<{ minor: number; major: number }> {
  const text = await (await fetch(new URL('/metrics', serviceUrl))).text();
  const sum = (kinds: string[]) =>
    kinds.reduce((total, kind) => {
      const match = new RegExp(`^nodejs_gc_duration_seconds_sum\\{kind="${kind}"\\} (\\S+)$`, 'm');
      return total + Number(match.exec(text)?.[1] ?? 0);
    }, 0);
  // Scavenges are "minor"; mark-compacts and their incremental steps pause it too.
  return { minor: sum(['minor']), major: sum(['major', 'incremental']) };
}

/**
 * The service's GC pauses over a span, as closedLoop's meter: started when the window begins,
 * read (asynchronously, over HTTP) when it ends.
 */
export function gcMeter(serviceUrl: string) {
  const start = gcSeconds(serviceUrl);
  start.catch(() => {}); // awaited below; a failure is reported there
  return async () => {
    const [before, after] = await Promise.all([start, gcSeconds(serviceUrl)]);
    return { minor: after.minor - before.minor, major: after.major - before.major };
  };
}
