import type { LiveState } from './api.js';

const TEXT: Record<LiveState, string> = {
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Connection lost, reconnecting…',
};

/** Whether updates are streaming; announced to screen readers when it changes. */
export function ConnectionBadge({ state }: { state: LiveState }) {
  return (
    <p class={`connection connection-${state}`} role="status" aria-live="polite" data-state={state}>
      <span class="dot" aria-hidden="true" />
      {TEXT[state]}
    </p>
  );
}
