import {
  Column,
  getTableColumns,
  sql,
  type InferSelectModel,
  type SQL,
  type Table,
} from 'drizzle-orm';
import { PgTimestamp } from 'drizzle-orm/pg-core';
import { readTimestamp } from '../timestamps.js';

/**
 * Whole rows of a table read with hand-written SQL: its column list, and a mapper that decodes
 * each column as drizzle's select() does (timestamps, bigints, JSON) but with the decoders looked
 * up once, not per value (drizzle's row mapping type-checks every field of every row, which a
 * page of 50 runs, 35 columns each, made one of the service's largest costs on list queries),
 * and timestamps read by timestamps.ts.
 *
 * Each mapper is a function made for its list of columns (see compileMapper): every row it
 * makes has one shape, built in one object literal.
 */
export interface RowReader<T extends Table> {
  /** `"id", "project", …`: every column, in the order of the table's definition. */
  readonly columns: SQL;
  /** The same list as text, for statements written as text (db/client.ts queryText). */
  readonly columnList: string;
  /** One row as the driver hands it over (keyed by column name), as select() would answer it. */
  read(raw: Record<string, unknown>): InferSelectModel<T>;
  /** One row as an array of its values, in the order of `columns` (queryValues). */
  readValues(values: readonly unknown[]): InferSelectModel<T>;
  /**
   * A reader of only these fields (keys of the row, not column names): a list page reads the
   * columns its answer shows, not all of them. Its rows lack every other field. Past
   * MAX_SUBSETS different sets of fields, the whole row's reader.
   */
  only(keys: readonly string[]): RowReader<T>;
}

/**
 * A `timestamp with time zone` read as a Date: drizzle's decoder is `new Date(text)`, which
 * timestamps.ts reads faster to the same instant.
 */
function isDateWithTimezone(column: Column): boolean {
  return column instanceof PgTimestamp && column.withTimezone;
}

/**
 * How many column lists a table's reader makes. Clients choose the fields they ask for, so there
 * could be as many lists as sets of columns, each a statement PostgreSQL prepares on every
 * connection: past this, pages read whole rows as before.
 */
const MAX_SUBSETS = 64;

interface ColumnReader {
  key: string;
  name: string;
  /** Null when the driver's value is the row's (drizzle's mapping is the identity). */
  decode: ((value: unknown) => unknown) | null;
}

/**
 * A row mapper for these columns, written as code: `(raw) => ({ "id": raw["id"], … })` reading
 * by name, or `(values) => ({ "id": values[0], … })` by position. A loop storing `row[key]` for
 * each column, as before, made every store and load megamorphic: V8 looks each one up in its
 * stub cache, and a callgrind profile of a page of runs put those lookups at about 5 % of the
 * service's instructions (issue 18). The keys and names are the table's own (its schema), never
 * a client's: the source is made from them, quoted by JSON.stringify.
 */
function compileMapper<I, R>(
  columns: readonly ColumnReader[],
  by: 'name' | 'position',
): (raw: I) => R {
  const decoders = columns.map((c) => c.decode);
  const fields = columns.map((column, i) => {
    const value = `raw[${by === 'name' ? JSON.stringify(column.name) : i}]`;
    const read = column.decode
      ? `${value} === null || ${value} === undefined ? null : decoders[${i}](${value})`
      : `${value} ?? null`;
    return `${JSON.stringify(column.key)}: ${read}`;
  });
  const make = new Function('decoders', `return (raw) => ({ ${fields.join(', ')} });`) as (
    decoders: readonly (((value: unknown) => unknown) | null)[],
  ) => (raw: I) => R;
  return make(decoders);
}

export function createRowReader<T extends Table>(table: T): RowReader<T> {
  const all: ColumnReader[] = Object.entries(getTableColumns(table)).map(([key, column]) => ({
    key,
    name: column.name,
    decode: isDateWithTimezone(column)
      ? (value: unknown): unknown => readTimestamp(value as string | Date)
      : column.mapFromDriverValue === Column.prototype.mapFromDriverValue
        ? null
        : (value: unknown): unknown => column.mapFromDriverValue(value),
  }));
  const subsets = new Map<string, RowReader<T>>();
  const readerOf = (columns: ColumnReader[]): RowReader<T> => {
    const columnList = columns.map((c) => `"${c.name}"`).join(', ');
    return {
      columns: sql.raw(columnList),
      columnList,
      read: compileMapper(columns, 'name'),
      readValues: compileMapper(columns, 'position'),
      only(keys) {
        const wanted = new Set(keys);
        const chosen = all.filter((c) => wanted.has(c.key));
        const id = chosen.map((c) => c.key).join(',');
        let subset = subsets.get(id);
        if (subset === undefined) {
          if (subsets.size >= MAX_SUBSETS) return whole;
          subset = readerOf(chosen);
          subsets.set(id, subset);
        }
        return subset;
      },
    };
  };
  const whole = readerOf(all);
  return whole;
}
