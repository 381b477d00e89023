import { fmt } from './stats.js';

/** One line of a scenario's table: runstate's figure beside its baseline's, and the target. */
export interface Row {
  measure: string;
  runstate: string;
  baseline: string;
  /** runstate ÷ baseline, or another comparison the target is written against. */
  ratio: string;
  target: string;
  met: boolean | null;
}

export interface ScenarioReport {
  title: string;
  /** What was run, how, and what the baseline is. */
  setup: string;
  rows: Row[];
  /** Lost or duplicated events, CPU shares, anything a reader must know to trust the figures. */
  notes: string[];
}

export function ratioOf(runstate: number, baseline: number): string {
  return `${fmt(runstate / baseline, 2)}×`;
}

export function renderScenario(report: ScenarioReport): string {
  const lines = [
    `## ${report.title}`,
    '',
    report.setup,
    '',
    '| measure | runstate | baseline | ratio | target | met |',
    '| --- | --: | --: | --: | --- | :-: |',
    ...report.rows.map(
      (r) =>
        `| ${r.measure} | ${r.runstate} | ${r.baseline} | ${r.ratio} | ${r.target} | ${
          r.met == null ? '–' : r.met ? 'yes' : '**no**'
        } |`,
    ),
    '',
    ...report.notes.map((n) => `- ${n}`),
    '',
  ];
  return lines.join('\n');
}
