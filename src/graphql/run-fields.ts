import { getTableColumns } from 'drizzle-orm';
import {
  Kind,
  isObjectType,
  type GraphQLResolveInfo,
  type GraphQLSchema,
  type SelectionSetNode,
} from 'graphql';
import { runs, type RunRow } from '../db/schema.js';

/**
 * The fields of RunRow a page of runs (`RunConnection`) must read for what the operation asks of
 * its nodes, so a list of 50 runs reads a handful of columns, not all 35 (issue 18). Null when
 * the nodes ask for anything this cannot vouch for: then the whole row is read, as before.
 *
 * A node field is vouched for when it is a column read by the default resolver (the schema has
 * no resolver for it: one added later takes it out of here by itself), or when it is one of the
 * fields below, whose resolvers (graphql/modules/runs.ts) read only the columns listed.
 */
const DERIVED: Readonly<Record<string, readonly (keyof RunRow)[]>> = {
  category: ['status'],
  color: ['status'],
  isDone: ['status'],
  isFinal: ['status'],
  isRunning: ['status'],
  isPending: ['status'],
  isReady: ['blockedReason'],
};

const COLUMNS = new Set(Object.keys(getTableColumns(runs)));

/** Per schema: Run's fields a page may read by column alone, and the columns each needs. */
const readable = new WeakMap<GraphQLSchema, ReadonlyMap<string, readonly (keyof RunRow)[]>>();

function readableFields(schema: GraphQLSchema): ReadonlyMap<string, readonly (keyof RunRow)[]> {
  let fields = readable.get(schema);
  if (fields === undefined) {
    const map = new Map<string, readonly (keyof RunRow)[]>();
    const run = schema.getType('Run');
    if (isObjectType(run)) {
      for (const field of Object.values(run.getFields())) {
        if (DERIVED[field.name]) map.set(field.name, DERIVED[field.name]!);
        else if (field.resolve === undefined && COLUMNS.has(field.name))
          map.set(field.name, [field.name as keyof RunRow]);
      }
    }
    fields = map;
    readable.set(schema, fields);
  }
  return fields;
}

/** What a page of runs (`RunConnection`) must read for the selection `info` resolves. */
export interface PageReads {
  /** The RunRow fields its nodes need; null: all of them. */
  fields: (keyof RunRow)[] | null;
  /**
   * Whether `totalCount` is asked for: then it is counted while the page is read, not after it
   * (one round trip less to wait for).
   */
  totalCount: boolean;
}

export function pageReadsOf(info: GraphQLResolveInfo): PageReads {
  const fields = readableFields(info.schema);
  const needed = new Set<keyof RunRow>();
  let vouched = true;
  let totalCount = false;
  const onNodeField = (name: string) => {
    if (name === '__typename') return;
    const columns = fields.get(name);
    if (columns === undefined) vouched = false;
    else for (const column of columns) needed.add(column);
  };
  // A fragment missing from the document: nothing can be vouched for.
  const visit = (set: SelectionSetNode | undefined, onField: Parameters<typeof visitFields>[2]) => {
    if (!visitFields(info, set, onField)) vouched = false;
  };
  for (const node of info.fieldNodes)
    visit(node.selectionSet, (name, edges) => {
      if (name === 'totalCount') totalCount = true;
      if (name !== 'edges') return;
      visit(edges, (inner, nodeSet) => {
        if (inner === 'node') visit(nodeSet, onNodeField);
      });
    });
  return { fields: vouched ? [...needed] : null, totalCount };
}

/**
 * What the answer of a transition field (`transitionRun`, `transitionRuns`) reads of accepted
 * outcomes: their run only if some selection asks for a field `run`, under whatever fragment
 * (or when a fragment cannot be found: then it is read, to be safe).
 */
export function outcomeReadsOf(info: GraphQLResolveInfo): { run: boolean } {
  let run = false;
  for (const node of info.fieldNodes)
    if (!visitFields(info, node.selectionSet, (name) => (run ||= name === 'run'))) run = true;
  return { run };
}

/**
 * Call `onField` with each field of `set`, its fragments' included; false when a fragment it
 * spreads is not in the document.
 */
function visitFields(
  info: GraphQLResolveInfo,
  set: SelectionSetNode | undefined,
  onField: (name: string, set: SelectionSetNode | undefined) => void,
): boolean {
  let complete = true;
  for (const selection of set?.selections ?? []) {
    if (selection.kind === Kind.FIELD) onField(selection.name.value, selection.selectionSet);
    else if (selection.kind === Kind.INLINE_FRAGMENT)
      complete = visitFields(info, selection.selectionSet, onField) && complete;
    else {
      const fragment = info.fragments[selection.name.value];
      if (fragment) complete = visitFields(info, fragment.selectionSet, onField) && complete;
      else complete = false;
    }
  }
  return complete;
}
