import { visibleProjects } from '../auth/principal.js';
import type { Db, Executor } from '../db/client.js';
import type { RunRow, StatusChangeRow } from '../db/schema.js';
import { BadUserInputError, CursorExpiredError } from '../errors.js';
import { findPredicate, getDialect, type Dialect } from '../lifecycle/dialects.js';
import {
  getStatusesInCategories,
  RUN_STATUSES,
  type RunStatus,
  type StatusCategory,
} from '../lifecycle/lifecycle.js';
import { decodeCursor, encodeCursor, toConnection } from '../pagination.js';
import {
  checkDate,
  checkFirst,
  checkJsonObject,
  checkListLength,
  checkOptionalString,
  checkStringList,
  checkUuid,
  LIMITS,
} from '../validation.js';
import { conditionState } from './dependency-rules.js';
import { countRunsByStatus } from './run-counts.js';
import { getLogHorizon } from './retention.js';
import * as store from './run-store.js';
import * as changeStore from '../changelog/change-store.js';
import * as dependencyStore from './dependency-store.js';

/** Reads: filters and cursors are checked here, the SQL is in run-store.ts. */

/** A dialect's named status set (RunFilter.predicate, StatusChangeFilter.predicate). */
export interface PredicateFilterInput {
  dialect: Dialect;
  name: string;
}

export interface RunFilterInput {
  project?: string | null;
  statuses?: readonly RunStatus[] | null;
  categories?: readonly StatusCategory[] | null;
  predicate?: PredicateFilterInput | null;
  parentId?: string | null;
  roots?: boolean | null;
  meta?: unknown;
  attributes?: unknown;
  tags?: readonly string[] | null;
  nameContains?: string | null;
  createdAfter?: Date | null;
  createdBefore?: Date | null;
}

export interface StatusChangeFilterInput {
  parentId?: string | null;
  runIds?: readonly string[] | null;
  projects?: readonly string[] | null;
  statuses?: readonly RunStatus[] | null;
  categories?: readonly StatusCategory[] | null;
  predicate?: PredicateFilterInput | null;
}

export interface RunOrderInput {
  field?: store.RunOrderField | null;
  direction?: store.OrderDirection | null;
}

/**
 * Statuses matching every one of a status list, a category list and a dialect's predicate;
 * null when none is given. An unknown predicate is BAD_USER_INPUT listing the dialect's.
 */
export function resolveStatusFilter(
  field: string,
  filter: {
    statuses?: readonly RunStatus[] | null;
    categories?: readonly StatusCategory[] | null;
    predicate?: PredicateFilterInput | null;
  },
): RunStatus[] | null {
  const sets: ReadonlySet<RunStatus>[] = [];
  if (filter.statuses != null) sets.push(new Set(filter.statuses));
  if (filter.categories != null) sets.push(new Set(getStatusesInCategories(filter.categories)));
  if (filter.predicate != null) {
    const { dialect, name } = filter.predicate;
    const found = findPredicate(dialect, name);
    if (!found) {
      const names = getDialect(dialect).predicates.map((p) => p.name);
      throw new BadUserInputError(
        `${field}.predicate.name`,
        `"${name.slice(0, 100)}" is not a ${dialect} predicate; expected one of ${names.join(', ')}`,
        { allowed: names },
      );
    }
    sets.push(new Set(found.statuses));
  }
  if (sets.length === 0) return null;
  return RUN_STATUSES.filter((s) => sets.every((set) => set.has(s)));
}

const RUN_CURSOR = 'run';
const CHANGE_CURSOR = 'sc';
const HISTORY_CURSOR = 'hist';

export function statusChangeCursor(change: Pick<StatusChangeRow, 'id'>): string {
  return encodeCursor(CHANGE_CURSOR, [change.id]);
}

/** The log position a `statusChanged`/`statusChanges` cursor stands for. */
export function decodeStatusChangeCursor(field: string, cursor: string): number {
  const [id] = decodeCursor(field, cursor, CHANGE_CURSOR, ['id']);
  return Number(id);
}

/** A checked RunFilter, in the shape run-store's queries take, within the token's projects. */
export function checkRunFilter(
  field: string,
  filter: RunFilterInput | null | undefined,
  scope: readonly string[] | null,
): store.RunQuery {
  const f = filter ?? {};
  checkListLength(`${field}.tags`, f.tags ?? [], LIMITS.tags);
  checkListLength(`${field}.statuses`, f.statuses ?? [], LIMITS.filterValues);
  return {
    project: checkOptionalString(`${field}.project`, f.project, { max: LIMITS.projectLength }),
    projects: scope,
    statuses: resolveStatusFilter(field, f),
    tags: f.tags?.map((t, i) =>
      checkOptionalString(`${field}.tags[${i}]`, t, { max: LIMITS.tagLength })!,
    ),
    nameContains: checkOptionalString(`${field}.nameContains`, f.nameContains, {
      max: LIMITS.nameLength,
    }),
    createdAfter:
      f.createdAfter == null ? null : checkDate(`${field}.createdAfter`, f.createdAfter),
    createdBefore:
      f.createdBefore == null ? null : checkDate(`${field}.createdBefore`, f.createdBefore),
    parentId: f.parentId == null ? null : checkUuid(`${field}.parentId`, f.parentId),
    roots: f.roots ?? null,
    meta: f.meta == null ? null : checkJsonObject(`${field}.meta`, f.meta),
    attributes: f.attributes == null ? null : checkJsonObject(`${field}.attributes`, f.attributes),
  };
}

export async function listRuns(
  db: Db,
  args: {
    filter?: RunFilterInput | null;
    first?: number | null;
    after?: string | null;
    orderBy?: RunOrderInput | null;
  },
  /** The token's projects (null: all). */
  scope: readonly string[] | null,
  /** Narrows the filter (a run's children). */
  within: Partial<store.RunQuery> = {},
  reads: {
    /** Only these fields of each run (graphql/run-fields.ts); null: all. */
    fields?: readonly (keyof RunRow)[] | null;
    /** Count the filter's runs while the page is read (totalCount is asked for). */
    totalCount?: boolean;
  } = {},
) {
  const first = checkFirst('first', args.first, 50);
  const orderField = args.orderBy?.field ?? 'CREATED_AT';
  const direction = args.orderBy?.direction ?? 'DESC';
  const kind = `${RUN_CURSOR}:${orderField}:${direction}`;
  let after: store.RunPageQuery['after'] = null;
  if (args.after != null) {
    const [at, id] = decodeCursor('after', args.after, kind, ['time', 'uuid']);
    after = { at: new Date(Number(at)), id: String(id) };
  }
  const query = { ...checkRunFilter('filter', args.filter, scope), ...within };
  let counted: Promise<number> | null = null;
  const count = () => (counted ??= countRuns(db, query).then(sum));
  // Started before the page and awaited only by totalCount: a page that fails first must not
  // leave it rejected with nobody listening.
  if (reads.totalCount) count().catch(() => {});
  const rows = await store.listRuns(db, {
    ...query,
    orderField,
    direction,
    after,
    limit: first + 1,
    fields: reads.fields ?? null,
  });
  const keyOf = (run: RunRow) =>
    (orderField === 'UPDATED_AT' ? run.updatedAt : run.createdAt).getTime();
  return {
    ...toConnection(rows, first, (run) => encodeCursor(kind, [keyOf(run), run.id])),
    /** Counted only when asked for (RunConnection.totalCount). */
    totalCount: count,
  };
}

function sum(counts: ReadonlyMap<RunStatus, number>): number {
  let total = 0;
  for (const n of counts.values()) total += n;
  return total;
}

/**
 * Runs per status for a checked filter: from the counts tables (run-counts.ts) when they can answer
 * (projects, statuses, roots, a parent), else counted from runs.
 */
export async function countRuns(db: Db, query: store.RunQuery): Promise<Map<RunStatus, number>> {
  const byTable =
    !query.tags?.length &&
    query.nameContains == null &&
    query.createdAfter == null &&
    query.createdBefore == null &&
    query.meta == null &&
    query.attributes == null;
  if (!byTable) return store.countRunsMatching(db, query);
  let projects = query.projects ?? null;
  if (query.project != null) {
    projects = projects == null || projects.includes(query.project) ? [query.project] : [];
  }
  const counts = await countRunsByStatus(db, {
    projects,
    roots: query.roots ?? null,
    parentId: query.parentId ?? null,
  });
  if (query.statuses == null) return counts;
  const wanted = new Set(query.statuses);
  return new Map([...counts].filter(([status]) => wanted.has(status)));
}

/** A change-log cursor from below the retention horizon: CURSOR_EXPIRED, never a silent gap. */
export async function checkCursorKept(ex: Executor, field: string, afterId: number) {
  if (afterId < (await getLogHorizon(ex))) throw new CursorExpiredError(field);
}

/**
 * A page of the change log. It stops where a change with a lower id may still commit (see
 * changelog/change-log-tail.ts), so a client paging with `after` never skips one.
 */
export async function listStatusChanges(
  ex: Executor,
  resolvedLogPosition: number,
  args: { filter?: StatusChangeFilterInput | null; first?: number | null; after?: string | null },
  /** The token's projects (null: all). */
  scope: readonly string[] | null,
) {
  const first = checkFirst('first', args.first, 100);
  const filter = checkStatusChangeFilter('filter', args.filter, scope);
  const afterId = args.after == null ? null : decodeStatusChangeCursor('after', args.after);
  if (afterId != null) await checkCursorKept(ex, 'after', afterId);
  const rows = await changeStore.listStatusChanges(ex, {
    ...filter,
    afterId,
    throughId: await changeStore.findContiguousLogHead(ex, resolvedLogPosition),
    limit: first + 1,
  });
  return toConnection(rows, first, statusChangeCursor);
}

/** A checked StatusChangeFilter, in the shape run-store's queries take. */
export function checkStatusChangeFilter(
  field: string,
  filter: StatusChangeFilterInput | null | undefined,
  scope: readonly string[] | null,
) {
  const f = filter ?? {};
  const projects = checkStringList(
    `${field}.projects`,
    f.projects,
    { min: 1, max: LIMITS.projectLength },
    LIMITS.filterValues,
  );
  return {
    runIds:
      f.runIds == null
        ? null
        : checkListLength(`${field}.runIds`, f.runIds, LIMITS.filterValues).map((id, i) =>
            checkUuid(`${field}.runIds[${i}]`, id),
          ),
    projects: visibleProjects({ projects: scope }, projects),
    statuses: resolveStatusFilter(field, f),
    parentId: f.parentId == null ? null : checkUuid(`${field}.parentId`, f.parentId),
  };
}

export async function listRunHistory(
  ex: Executor,
  runId: string,
  args: { first?: number | null; after?: string | null },
) {
  const first = checkFirst('first', args.first, 100);
  const kind = `${HISTORY_CURSOR}:${runId}`;
  const afterVersion =
    args.after == null ? null : Number(decodeCursor('after', args.after, kind, ['int32'])[0]);
  const rows = await changeStore.listRunHistory(ex, runId, afterVersion, first + 1);
  return toConnection(rows, first, (c) => encodeCursor(kind, [c.version]));
}

export async function getRun(ex: Executor, id: string): Promise<RunRow | null> {
  return store.getRunById(ex, checkUuid('id', id));
}

/** Runs by id, in the order asked, null for a missing one (for a batching loader). */
export async function getRunsInOrder(ex: Executor, ids: readonly string[]) {
  const rows = await store.getRunsByIds(ex, ids);
  const byId = new Map(rows.map((r) => [r.id, r]));
  return ids.map((id) => byId.get(id) ?? null);
}

/** Each run's upstream and downstream ids, in the order asked (for a batching loader). */
export async function getDependencyIds(ex: Executor, runIds: readonly string[]) {
  const edges = await dependencyStore.listDependencyEdges(ex, runIds);
  return runIds.map((id) => ({
    upstreams: edges.filter((e) => e.runId === id).map((e) => e.upstreamId),
    downstreams: edges.filter((e) => e.upstreamId === id).map((e) => e.runId),
  }));
}

/** Runs by id (those that exist), for the live fan-out's readers. */
export function getRunsByIds(ex: Executor, ids: readonly string[]): Promise<RunRow[]> {
  return store.getRunsByIds(ex, ids);
}

/** A step by its op among a parent's children. */
export async function getRunByOp(ex: Executor, parentId: string, op: string) {
  return store.getRunByOp(
    ex,
    checkUuid('parentId', parentId),
    checkOptionalString('op', op, { min: 1, max: LIMITS.opLength })!,
  );
}

/** Each upstream of a run with its condition: its own `when`, or what its trigger counts. */
export async function listDependencies(ex: Executor, run: RunRow) {
  const rows = await dependencyStore.listUpstreamStates(ex, [run.id]);
  return rows.map((u) => {
    const when = u.when ?? policyStatuses(run.trigger);
    return { upstreamId: u.id, when, ...conditionState(u, when) };
  });
}

/** The statuses a trigger policy counts an upstream in: its `when`, for dependsOn. */
function policyStatuses(trigger: RunRow['trigger']): RunStatus[] {
  switch (trigger) {
    case 'ALL_FAILED':
    case 'ONE_FAILED':
      return ['FAILED', 'UPSTREAM_FAILED'];
    case 'ALL_DONE':
    case 'ONE_DONE':
      return getStatusesInCategories(['DONE']);
    default:
      return ['SUCCEEDED'];
  }
}
