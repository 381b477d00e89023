import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { drizzle } from 'drizzle-orm/postgres-js';
import { migrate } from 'drizzle-orm/postgres-js/migrator';
import postgres from 'postgres';
import { expect, it } from 'vitest';
import { createPostgresDatabase } from '../../src/db/client.js';
import { withEmptyDatabase } from '../support/empty-database.js';

// Migration 0018 turns measurements into a table partitioned by week. A database with points
// from before keeps every one (ids, values, JSON data, times), new points take ids after them,
// and each lands in its week's partition or, older, in the default one.

const DRIZZLE = new URL('../../drizzle/', import.meta.url).pathname;

/** The migrations folder as it was up to (and with) `lastTag`. */
function migrationsUpTo(lastTag: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'runstate-migrations-'));
  cpSync(DRIZZLE, dir, { recursive: true });
  const journalPath = join(dir, 'meta', '_journal.json');
  const journal = JSON.parse(readFileSync(journalPath, 'utf8')) as {
    entries: { idx: number; tag: string }[];
  };
  const last = journal.entries.findIndex((e) => e.tag === lastTag);
  journal.entries = journal.entries.slice(0, last + 1);
  writeFileSync(journalPath, JSON.stringify(journal));
  return dir;
}

it('keeps every point of a database migrated before it, and new points follow', async () => {
  await withEmptyDatabase('m0018', async (url) => {
    const folder = migrationsUpTo('0017_records');
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    try {
      await migrate(drizzle(sql), { migrationsFolder: folder });
      const [run] = await sql<
        { id: string }[]
      >`INSERT INTO runs (project) VALUES ('m') RETURNING id`;
      await sql`INSERT INTO measurements (run_id, name, value, data, step, at) VALUES
        (${run!.id}, 'loss', 0.5, NULL, 1, now() - interval '400 days'),
        (${run!.id}, 'loss', 0.25, NULL, 2, now()),
        (${run!.id}, 'mode', NULL, '{"a": [1, "two"]}', 2, now())`;
      const before =
        await sql`SELECT id, run_id, name, value, data, step, at FROM measurements ORDER BY id`;

      const database = createPostgresDatabase({ url, poolSize: 2 });
      try {
        await database.migrate();
      } finally {
        await database.close();
      }
      const after =
        await sql`SELECT id, run_id, name, value, data, step, at FROM measurements ORDER BY id`;
      expect(after).toEqual(before);
      const [fresh] = await sql<{ id: string; part: string }[]>`
        INSERT INTO measurements (run_id, name, value) VALUES (${run!.id}, 'loss', 0.1)
        RETURNING id, tableoid::regclass::text AS part`;
      expect(Number(fresh!.id)).toBeGreaterThan(Math.max(...before.map((r) => Number(r['id']))));
      expect(fresh!.part).toMatch(/^measurements_p\d{8}$/);
      const parts = await sql<{ part: string; n: number }[]>`
        SELECT tableoid::regclass::text AS part, count(*)::int AS n FROM measurements
        GROUP BY 1 ORDER BY 1`;
      expect(parts.find((p) => p.part === 'measurements_default')?.n).toBe(1);
      expect(
        await sql`SELECT 1 FROM pg_class WHERE relname = 'measurements_unpartitioned'`,
      ).toHaveLength(0);
    } finally {
      await sql.end();
      rmSync(folder, { recursive: true, force: true });
    }
  });
});
