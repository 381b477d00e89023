import type { ApiTokenRow, RunRow, StatusChangeRow } from '../db/schema.js';
import type { Principal } from '../auth/principal.js';
import type { DialectInfo, NativeStatus, StatusPredicate } from '../lifecycle/dialects.js';
import type { RunStatus, StatusInfo } from '../lifecycle/lifecycle.js';

/**
 * Parent types the generated resolver types use for objects that are not table rows.
 * See scripts/codegen.ts (mappers).
 */

/** `lifecycle` resolves to an empty object; its fields read the lifecycle module. */
export type LifecycleParent = Record<string, never>;

/** The lifecycle module's StatusInfo, renamed so it cannot clash with the generated type. */
export type LifecycleStatusInfo = StatusInfo;

/** The dialect table's types (lifecycle/dialects.ts), renamed as StatusInfo is. */
export type DialectInfoParent = DialectInfo;
export type NativeStatusParent = NativeStatus;
export type StatusPredicateParent = StatusPredicate;

export interface TransitionAcceptedParent {
  kind?: 'accepted';
  run: RunRow;
  change: StatusChangeRow | null;
}

/** A page of runs, with the log position read before it, and its filter's count on demand. */
export type RunConnectionParent = ConnectionParent<RunRow> & {
  logCursor: string;
  totalCount: () => Promise<number>;
};

/** An upstream of a run with its condition (run-queries.ts listDependencies). */
export interface DependencyParent {
  upstreamId: string;
  /** The upstream, read once with the list (and visible to the token). */
  run: RunRow;
  when: RunStatus[];
  satisfied: boolean;
  possible: boolean;
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

export interface CreatedApiTokenParent {
  token: string;
  apiToken: ApiTokenRow;
}

/** `viewer` is the request's principal. */
export type ViewerParent = Principal;
