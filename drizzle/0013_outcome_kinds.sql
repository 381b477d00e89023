-- The answers kept for idempotency keys name the outcome's kind, not its GraphQL type, so that
-- renaming a GraphQL type changes no stored answer (src/runs/transition-batch.ts). __typename
-- stays for one release: instances of the previous version read it during a rolling upgrade.
UPDATE "transition_keys"
SET "outcome" = "outcome" || jsonb_build_object('kind',
  CASE "outcome"->>'__typename'
    WHEN 'TransitionAccepted' THEN 'accepted'
    WHEN 'IllegalTransition' THEN 'illegal'
    WHEN 'TransitionConflict' THEN 'conflict'
    WHEN 'RunNotFound' THEN 'notFound'
  END)
WHERE NOT "outcome" ? 'kind';
