import type { StatusCount } from './types.js';
import { textColorOn } from './format.js';

const FALLBACK = '#888888';

/**
 * Runs per status: a stacked bar in the lifecycle's colors (for the eye), then each status with
 * its number and the total (for everyone: the bar itself is hidden from screen readers).
 * With `hrefFor`, each status links somewhere (the runs page: its status filter).
 */
export function CountsBar({
  counts,
  total,
  colors,
  label,
  noun = ['run', 'runs'],
  hrefFor,
}: {
  counts: StatusCount[];
  total: number;
  colors: ReadonlyMap<string, string>;
  /** Names the group for screen readers ("Runs by status"). */
  label: string;
  noun?: [string, string];
  hrefFor?: (status: string) => string;
}) {
  const colorOf = (status: string) => colors.get(status) ?? FALLBACK;
  const sum = counts.reduce((n, c) => n + c.count, 0);
  return (
    <div class="counts" role="group" aria-label={label} data-total={total}>
      <div class="counts-bar" aria-hidden="true">
        {sum > 0 &&
          counts.map((c) => (
            <span
              key={c.status}
              class="counts-segment"
              data-status={c.status}
              title={`${c.status}: ${c.count}`}
              style={{ flexGrow: c.count, backgroundColor: colorOf(c.status) }}
            />
          ))}
      </div>
      <ul class="counts-legend">
        <li class="counts-total">
          <strong data-testid="total">{total}</strong> {total === 1 ? noun[0] : noun[1]}
        </li>
        {counts.map((c) => {
          const body = (
            <>
              <span
                class="counts-name"
                style={{
                  backgroundColor: colorOf(c.status),
                  color: textColorOn(colorOf(c.status)),
                }}
              >
                {c.status}
              </span>{' '}
              <span class="counts-count">{c.count}</span>
            </>
          );
          return (
            <li key={c.status} data-status={c.status}>
              {hrefFor ? <a href={hrefFor(c.status)}>{body}</a> : body}
            </li>
          );
        })}
      </ul>
    </div>
  );
}
