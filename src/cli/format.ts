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
