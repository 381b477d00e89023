import { textColorOn } from './format.js';
import { dialectName, RUNSTATE_DIALECT } from './types.js';

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

/**
 * A status in the run's own dialect's names, quietly beside its badge: `· exec_done (Parsl)`,
 * read out as "Parsl status exec_done". Nothing for a runstate run: the badge is its name.
 */
export function NativeStatus({ dialect, native }: { dialect: string; native: string }) {
  if (dialect === RUNSTATE_DIALECT) return null;
  const system = dialectName(dialect);
  const label = `${system} status ${native}`;
  return (
    <span class="native" data-dialect={dialect} data-native={native} title={label}>
      <span aria-hidden="true">
        · <span class="native-name">{native}</span> ({system})
      </span>
      <span class="sr-only">{label}</span>
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

/**
 * What a run or a change ended with, beside its status: `· DIFF · exit 64`, read out as
 * "outcome DIFF, exit code 64". Nothing when neither is set (an exit code of 0 is shown).
 */
export function Outcome({
  outcome,
  exitCode = null,
}: {
  outcome: string | null;
  exitCode?: number | null;
}) {
  if (outcome == null && exitCode == null) return null;
  const shown = [outcome, exitCode != null ? `exit ${exitCode}` : null].filter(Boolean);
  const label = [
    outcome != null ? `outcome ${outcome}` : null,
    exitCode != null ? `exit code ${exitCode}` : null,
  ]
    .filter(Boolean)
    .join(', ');
  return (
    <span
      class="outcome"
      data-outcome={outcome ?? undefined}
      data-exit-code={exitCode ?? undefined}
      title={label}
    >
      <span aria-hidden="true">· {shown.join(' · ')}</span>
      <span class="sr-only">{label}</span>
    </span>
  );
}
