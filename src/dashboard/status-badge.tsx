import { textColorOn } from './format.js';

/** A status in its lifecycle color. */
export function StatusBadge({ status, color }: { status: string; color: string }) {
  return (
    <span
      class="status"
      data-status={status}
      style={{ backgroundColor: color, color: textColorOn(color) }}
    >
      {status}
    </span>
  );
}

export function ProgressBar({
  progress,
  phase,
}: {
  progress: number | null;
  phase?: string | null;
}) {
  if (progress == null) return <span class="muted">–</span>;
  const percent = Math.round(progress * 100);
  return (
    <span class="progress-cell">
      <span
        class="progress"
        role="progressbar"
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={percent}
        aria-label={phase ? `progress, ${phase}` : 'progress'}
      >
        <span class="bar" style={{ width: `${percent}%` }} />
      </span>
      <span class="percent">{percent}%</span>
      {phase && <span class="phase muted">{phase}</span>}
    </span>
  );
}
