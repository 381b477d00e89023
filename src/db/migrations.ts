import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import { MIGRATIONS_DIR, queryRows, type Executor } from './client.js';

/** One migration of drizzle/meta/_journal.json. */
export interface MigrationEntry {
  tag: string;
  /** drizzle-kit's timestamp; drizzle records it as the applied migration's created_at. */
  when: number;
}

/** The migrations this build ships, oldest first. */
export function listShippedMigrations(): MigrationEntry[] {
  const journal = JSON.parse(readFileSync(join(MIGRATIONS_DIR, 'meta', '_journal.json'), 'utf8'));
  return (journal.entries as MigrationEntry[]).map(({ tag, when }) => ({ tag, when }));
}

/**
 * The shipped migrations the database has not applied yet (all of them on a new database).
 * drizzle applies migrations in journal order and records each one's `when`, so every entry
 * newer than the newest recorded one is pending.
 */
export async function listPendingMigrations(db: Executor): Promise<MigrationEntry[]> {
  const shipped = listShippedMigrations();
  const [table] = await queryRows<{ present: boolean }>(
    db,
    sql`/* migrationsTablePresent */ SELECT to_regclass('drizzle.__drizzle_migrations') IS NOT NULL AS present`,
  );
  if (!table?.present) return shipped;
  const [row] = await queryRows<{ latest: string | number | null }>(
    db,
    sql`/* latestAppliedMigration */ SELECT max(created_at) AS latest FROM drizzle.__drizzle_migrations`,
  );
  const latest = row?.latest == null ? -1 : Number(row.latest);
  return shipped.filter((m) => m.when > latest);
}
