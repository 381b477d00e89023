import {
  getTableColumns,
  sql,
  type Column,
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
 */
export interface RowReader<T extends Table> {
  /** `"id", "project", …`: every column, in the order of the table's definition. */
  readonly columns: SQL;
  /** The same list as text, for statements written as text (db/client.ts queryText). */
  readonly columnList: string;
  /** One row as the driver hands it over (keyed by column name), as select() would answer it. */
  read(raw: Record<string, unknown>): InferSelectModel<T>;
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

export function createRowReader<T extends Table>(table: T): RowReader<T> {
  const all = Object.entries(getTableColumns(table)).map(([key, column]) => ({
    key,
    name: column.name,
    decode: isDateWithTimezone(column)
      ? (value: unknown): unknown => readTimestamp(value as string | Date)
      : (value: unknown): unknown => column.mapFromDriverValue(value),
  }));
  const subsets = new Map<string, RowReader<T>>();
  const readerOf = (columns: typeof all): RowReader<T> => {
    const columnList = columns.map((c) => `"${c.name}"`).join(', ');
    return {
      columns: sql.raw(columnList),
      columnList,
      read(raw) {
        const row: Record<string, unknown> = {};
        for (const { key, name, decode } of columns) {
          const value = raw[name];
          row[key] = value === null || value === undefined ? null : decode(value);
        }
        return row as InferSelectModel<T>;
      },
      only(keys) {
        const wanted = new Set(keys);
        const id = all
          .filter((c) => wanted.has(c.key))
          .map((c) => c.key)
          .join(',');
        let subset = subsets.get(id);
        if (subset === undefined) {
          if (subsets.size >= MAX_SUBSETS) return whole;
          subset = readerOf(all.filter((c) => wanted.has(c.key)));
          subsets.set(id, subset);
        }
        return subset;
      },
    };
  };
  const whole = readerOf(all);
  return whole;
}
