import { and, eq, or } from 'drizzle-orm';
import { type Tx } from '../db/client.js';
import { transitionKeys } from '../db/schema.js';

/** SQL of transition_keys (the answers kept for idempotency keys) only. */

export interface StoredTransitionKey {
  runId: string;
  key: string;
  changeId: number | null;
  outcome: Record<string, unknown>;
}

export async function findTransitionKeys(
  tx: Tx,
  pairs: readonly { runId: string; key: string }[],
): Promise<StoredTransitionKey[]> {
  if (pairs.length === 0) return [];
  return tx
    .select({
      runId: transitionKeys.runId,
      key: transitionKeys.key,
      changeId: transitionKeys.changeId,
      outcome: transitionKeys.outcome,
    })
    .from(transitionKeys)
    .where(
      or(
        ...pairs.map((p) => and(eq(transitionKeys.runId, p.runId), eq(transitionKeys.key, p.key))),
      ),
    );
}

export async function insertTransitionKeys(
  tx: Tx,
  rows: readonly StoredTransitionKey[],
): Promise<void> {
  if (rows.length === 0) return;
  await tx.insert(transitionKeys).values([...rows]);
}
