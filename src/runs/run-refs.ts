import { and, eq, inArray } from 'drizzle-orm';
import type { Executor } from '../db/client.js';
import { runs } from '../db/schema.js';
import { BadUserInputError } from '../errors.js';
import { checkUuid, LIMITS } from '../validation.js';

/**
 * References to other runs in createRun (dependsOn, dependencies, event triggers): a run id,
 * `runs.<uuid>`, or `ops.<name>`: a sibling, the child of the same parent with that op.
 */
export type RunRef = { kind: 'id'; id: string } | { kind: 'op'; op: string };

export function parseRunRef(field: string, value: string): RunRef {
  if (value.startsWith('ops.')) {
    const op = value.slice('ops.'.length);
    if (op.length === 0 || op.length > LIMITS.opLength) {
      throw new BadUserInputError(
        field,
        `ops.<name>: the name must be 1–${LIMITS.opLength} characters`,
      );
    }
    return { kind: 'op', op };
  }
  const id = value.startsWith('runs.') ? value.slice('runs.'.length) : value;
  try {
    return { kind: 'id', id: checkUuid(field, id) };
  } catch {
    throw new BadUserInputError(field, 'must be a run id, runs.<uuid>, or ops.<name>');
  }
}

/**
 * The ids of `refs` (in order): ops resolved among `parentId`'s children, in one query. An op
 * without a parent, or one no sibling has, is BAD_USER_INPUT naming its field.
 */
export async function resolveRunRefs(
  ex: Executor,
  parentId: string | null,
  ownOp: string | null,
  refs: readonly { ref: RunRef; field: string }[],
): Promise<string[]> {
  const ops = [...new Set(refs.flatMap((r) => (r.ref.kind === 'op' ? [r.ref.op] : [])))];
  const byOp = new Map<string, string>();
  if (ops.length > 0 && parentId != null) {
    const rows = await ex
      .select({ op: runs.op, id: runs.id })
      .from(runs)
      .where(and(eq(runs.parentId, parentId), inArray(runs.op, ops)));
    for (const row of rows) byOp.set(row.op!, row.id);
  }
  return refs.map(({ ref, field }) => {
    if (ref.kind === 'id') return ref.id;
    if (parentId == null) {
      throw new BadUserInputError(field, 'ops.<name> names a sibling: give parentId');
    }
    if (ref.op === ownOp) {
      throw new BadUserInputError(field, `ops.${ref.op} is this run itself: a cycle`);
    }
    const id = byOp.get(ref.op);
    if (!id) throw new BadUserInputError(field, `no step ops.${ref.op} under run ${parentId}`);
    return id;
  });
}
