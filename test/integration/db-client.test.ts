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
