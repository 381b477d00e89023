import { BadUserInputError } from './errors.js';

/**
 * Opaque cursors: base64url of a small JSON array `[kind, ...key]`. The kind keeps a cursor of
 * one list (or one order) from being used on another.
 */

export type CursorKey = readonly (string | number)[];

export function encodeCursor(kind: string, key: CursorKey): string {
  return Buffer.from(JSON.stringify([kind, ...key]), 'utf8').toString('base64url');
}

/** Decode a cursor of the given kind with `arity` key parts, or throw BAD_USER_INPUT for `field`. */
export function decodeCursor(
  field: string,
  cursor: string,
  kind: string,
  arity: number,
): CursorKey {
  let parsed: unknown;
  try {
    if (cursor.length > 500 || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw new Error('shape');
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new BadUserInputError(field, 'is not a valid cursor');
  }
  if (
    !Array.isArray(parsed) ||
    parsed[0] !== kind ||
    parsed.length !== arity + 1 ||
    !parsed
      .slice(1)
      .every((p) => typeof p === 'string' || (typeof p === 'number' && Number.isSafeInteger(p)))
  ) {
    throw new BadUserInputError(field, 'is not a valid cursor for this list');
  }
  return parsed.slice(1) as CursorKey;
}

/** A Relay connection page built from `first + 1` fetched rows. */
export function toConnection<T>(rows: T[], first: number, cursorOf: (row: T) => string) {
  const page = rows.slice(0, first);
  const edges = page.map((node) => ({ cursor: cursorOf(node), node }));
  return {
    edges,
    pageInfo: {
      hasNextPage: rows.length > first,
      hasPreviousPage: false,
      startCursor: edges[0]?.cursor ?? null,
      endCursor: edges.at(-1)?.cursor ?? null,
    },
  };
}
