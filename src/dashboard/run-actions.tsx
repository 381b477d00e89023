import { useState } from 'preact/hooks';
import { gql } from './api.js';

/** What the buttons need to know of the run: what its lifecycle allows now. */
export interface ActionableRun {
  id: string;
  status: string;
  isStoppable: boolean;
  allowedTransitions: string[];
}

type Action = 'stop' | 'retry' | 'resume';

const ACTIONS: { action: Action; label: string; mutation: string; enters: string }[] = [
  { action: 'stop', label: 'Stop', mutation: 'stopRun', enters: 'STOPPING' },
  { action: 'retry', label: 'Retry', mutation: 'retryRun', enters: 'RETRYING' },
  { action: 'resume', label: 'Resume', mutation: 'resumeRun', enters: 'RESUMING' },
];

type Result =
  | { __typename: 'TransitionAccepted'; run: { id: string } }
  | { __typename: 'IllegalTransition' | 'TransitionConflict' | 'RunNotFound'; message: string };

const RESULT = `__typename
  ... on TransitionAccepted { run { id } }
  ... on IllegalTransition { message }
  ... on TransitionConflict { message }
  ... on RunNotFound { message }`;

/**
 * Stop, Retry and Resume, for a token that may write (the page shows none to a READ token).
 * Each is enabled when the lifecycle allows its move from the status shown; the page may be a
 * moment behind the run, so the server may still say no: its typed refusal is shown as is, and
 * the run is read again (`onSettled`). On success the live updates show the new status.
 */
export function RunActions({
  run,
  token,
  onSettled,
}: {
  run: ActionableRun;
  token: string | null;
  /** Told after every answer: the page reads the run again. */
  onSettled: () => void;
}) {
  const [busy, setBusy] = useState<Action | null>(null);
  const [refusal, setRefusal] = useState<string | null>(null);
  const allowed = (action: Action, enters: string) =>
    action === 'stop' ? run.isStoppable : run.allowedTransitions.includes(enters);

  const act = async (action: Action, label: string, mutation: string) => {
    setBusy(action);
    setRefusal(null);
    try {
      const data = await gql<Record<string, Result>>(
        `mutation Act($id: ID!) { result: ${mutation}(id: $id) { ${RESULT} } }`,
        { id: run.id },
        token,
      );
      const result = data['result']!;
      if (result.__typename !== 'TransitionAccepted')
        setRefusal(`${label} refused: ${result.message}`);
    } catch (error) {
      setRefusal(`${label} failed: ${error instanceof Error ? error.message : String(error)}`);
    } finally {
      setBusy(null);
      onSettled();
    }
  };

  return (
    <div class="actions">
      <div class="action-buttons" role="group" aria-label="Actions">
        {ACTIONS.map(({ action, label, mutation, enters }) => (
          <button
            key={action}
            type="button"
            data-action={action}
            disabled={busy != null || !allowed(action, enters)}
            title={
              allowed(action, enters)
                ? undefined
                : `${run.status} cannot go to ${enters}, as the lifecycle says`
            }
            onClick={() => void act(action, label, mutation)}
          >
            {busy === action ? `${label}…` : label}
          </button>
        ))}
      </div>
      {refusal && (
        <p class="error refusal" role="alert">
          {refusal}
        </p>
      )}
    </div>
  );
}
