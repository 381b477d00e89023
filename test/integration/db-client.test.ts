import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import {
  commitWithNextStatement,
  createPostgresDatabase,
  queryRows,
  type Database,
} from '../../src/db/client.js';

// The PostgreSQL client's transactions send BEGIN with their first statement, and COMMIT with
// their last when told (src/db/client.ts). They must still be all-or-nothing.

let database: Database;
const table = `client_test_${Date.now().toString(36)}`;
beforeAll(async () => {
  database = createPostgresDatabase({ url: inject('databaseUrl'), poolSize: 3 });
  await database.db.execute(sql.raw(`CREATE TABLE ${table} (n int PRIMARY KEY)`));
});
afterAll(async () => {
  await database.db.execute(sql.raw(`DROP TABLE ${table}`));
  await database.close();
});

async function rows(): Promise<number[]> {
  const result = await queryRows<{ n: number }>(
    database.db,
    sql.raw(`SELECT n FROM ${table} ORDER BY n`),
  );
  return result.map((r) => r.n);
}

describe('transactions on PostgreSQL', () => {
  it('commit with their last statement when told', async () => {
    await database.db.transaction(async (tx) => {
      await tx.execute(sql.raw(`INSERT INTO ${table} VALUES (1)`));
      commitWithNextStatement(tx);
      await tx.execute(sql`INSERT INTO ${sql.raw(table)} VALUES (${2})`);
    });
    expect(await rows()).toEqual([1, 2]);
  });

  it('write nothing when that last statement fails, and the connection stays usable', async () => {
    await expect(
      database.db.transaction(async (tx) => {
        await tx.execute(sql`INSERT INTO ${sql.raw(table)} VALUES (${3})`);
        commitWithNextStatement(tx);
        await tx.execute(sql`INSERT INTO ${sql.raw(table)} VALUES (${1})`); // duplicate key
      }),
    ).rejects.toThrow();
    expect(await rows()).toEqual([1, 2]);
    // Every pooled connection still works, inside and outside transactions.
    await Promise.all(
      [4, 5, 6].map((n) =>
        database.db.transaction(async (tx) => {
          await tx.execute(sql`INSERT INTO ${sql.raw(table)} VALUES (${n})`);
        }),
      ),
    );
    expect(await rows()).toEqual([1, 2, 4, 5, 6]);
  });

  it('write nothing when the callback throws after statements ran', async () => {
    await expect(
      database.db.transaction(async (tx) => {
        await tx.execute(sql`INSERT INTO ${sql.raw(table)} VALUES (${7})`);
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');
    expect(await rows()).toEqual([1, 2, 4, 5, 6]);
  });
});

describe('the pool (postgres.js, patched)', () => {
  it('reuses the connection that went idle last, so a burst’s extra connections stay idle', async () => {
    const pooled = createPostgresDatabase({ url: inject('databaseUrl'), poolSize: 4 });
    try {
      const pid = async () =>
        (await queryRows<{ pid: number }>(pooled.db, sql`SELECT pg_backend_pid() AS pid`))[0]!.pid;
      // A burst opens all four connections …
      const burst = await Promise.all(
        [1, 2, 3, 4].map(() =>
          queryRows<{ pid: number }>(
            pooled.db,
            sql`SELECT pg_backend_pid() AS pid, pg_sleep(0.05)`,
          ),
        ),
      );
      expect(new Set(burst.map(([row]) => row!.pid)).size).toBe(4);
      // … then one query at a time uses one of them, its caches warm, instead of taking each
      // in turn (taking the longest idle one spread the load over every backend).
      const serial: number[] = [];
      for (let i = 0; i < 8; i++) serial.push(await pid());
      expect(new Set(serial).size).toBe(1);
    } finally {
      await pooled.close();
    }
  });
});
