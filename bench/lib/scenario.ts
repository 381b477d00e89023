import type { ScenarioReport } from './report.js';

export interface BenchContext {
  /** A PostgreSQL admin URL; each scenario makes its own database there. */
  clusterUrl: string;
  /** The scenario's size argument (its meaning is the scenario's: seconds, subscribers, rows). */
  size: number | undefined;
  log(message: string): void;
}

export interface Scenario {
  name: string;
  /** What `size` means, and its default. */
  sizeMeans: string;
  run(context: BenchContext): Promise<ScenarioReport>;
}
