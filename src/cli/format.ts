import { getStatusInfo, isRunStatus } from '../lifecycle/lifecycle.js';

/** Terminal output helpers: lifecycle colors, tables, progress bars. */
export interface Style {
  /** `label` (default: the status itself) in the lifecycle color of `status`. */
  status(status: string, label?: string): string;
  dim(text: string): string;
  bold(text: string): string;
}

export function createStyle(colors: boolean): Style {
  const paint = (open: string, text: string) => (colors ? `\x1b[${open}m${text}\x1b[0m` : text);
  return {
    status(status, label = status) {
      if (!isRunStatus(status)) return label;
      const [r, g, b] = hexToRgb(getStatusInfo(status).color);
      return paint(`1;38;2;${r};${g};${b}`, label);
    },
    dim: (text) => paint('2', text),
    bold: (text) => paint('1', text),
  };
}

function hexToRgb(hex: string): [number, number, number] {
  const n = Number.parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/**
 * Text from the server (names, messages) with control characters removed, so a run's name
 * cannot move the cursor, recolor the terminal or write the clipboard of whoever watches.
 */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\x00-\x1f\x7f-\x9f]/g, '');
}

/** Visible width: escape sequences take no room. */
export function visibleLength(text: string): number {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\x1b\[[0-9;]*m/g, '').length;
}

/** Columns padded to their widest cell; the last column is not padded. */
export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) =>
    Math.max(visibleLength(h), ...rows.map((r) => visibleLength(r[i] ?? ''))),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, i) =>
        i === cells.length - 1 ? cell : cell + ' '.repeat(widths[i]! - visibleLength(cell)),
      )
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** `[#####-----]  50%`, or empty without progress. */
export function progressBar(progress: number | null, width = 10): string {
  if (progress == null) return '';
  const filled = Math.round(Math.min(1, Math.max(0, progress)) * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(Math.round(progress * 100)).padStart(3)}%`;
}

/** `label  value` lines, labels padded to the longest; rows without a value are left out. */
export function formatFields(rows: [label: string, value: string | null | undefined][]): string {
  const shown = rows.filter((row): row is [string, string] => row[1] != null && row[1] !== '');
  const width = Math.max(0, ...shown.map(([label]) => label.length));
  return shown.map(([label, value]) => `${label.padEnd(width)}  ${value}`).join('\n');
}

/** An upstream condition as `show` prints it. */
export interface Condition {
  /** The upstream: its op when it has one, else its id. */
  upstream: string;
  when: string[];
  isSatisfied: boolean;
  canStillBeSatisfied: boolean;
}

/**
 * `train=SUCCEEDED (met)`, `heat=SUCCEEDED|FAILED (waiting)`, `train=FAILED (never)`: the
 * upstream, the statuses that satisfy the condition, and whether it holds now, may still, or
 * never will.
 */
export function formatCondition(style: Style, condition: Condition): string {
  const state = condition.isSatisfied ? 'met' : condition.canStillBeSatisfied ? 'waiting' : 'never';
  const when = condition.when.map((status) => style.status(status)).join('|');
  const text = `(${state})`;
  return `${printable(condition.upstream)}=${when} ${state === 'waiting' ? style.dim(text) : style.bold(text)}`;
}
