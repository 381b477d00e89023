import type { RunRow, StatusChangeRow } from '../db/schema.js';

/**
 * Parent types the generated resolver types use for objects that are not table rows.
 * See scripts/codegen.ts (mappers).
 */

/** `lifecycle` resolves to an empty object; its fields read the lifecycle module. */
export type LifecycleParent = Record<string, never>;

export interface TransitionAcceptedParent {
  run: RunRow;
  change: StatusChangeRow | null;
}

/** A page of any keyset-paginated list. */
export interface ConnectionParent<T> {
  edges: { cursor: string; node: T }[];
  pageInfo: {
    hasNextPage: boolean;
    hasPreviousPage: boolean;
    startCursor: string | null;
    endCursor: string | null;
  };
}
