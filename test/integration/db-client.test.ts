import { sql, type SQL } from 'drizzle-orm';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import {
  commitWithNextStatement,
  createPostgresDatabase,
  queryRows,
  type Database,
} from '../../src/db/client.js';
import { withEmptyDatabase } from '../support/empty-database.js';
import { sleep, waitUntil } from '../support/operations.js';

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

/**
 * Wait until one backend other than `admin`'s own matches `where`, then terminate it and wait
 * for it to exit (pg_terminate_backend with a timeout).
 */
async function killBackend(admin: Database, where: SQL): Promise<void> {
  const matching = sql`${where} AND pid <> pg_backend_pid()`;
  await waitUntil(
    'the backend to kill',
    async () =>
      (await queryRows(admin.db, sql`SELECT pid FROM pg_stat_activity WHERE ${matching}`))
        .length === 1,
    5000,
  );
  await queryRows(
    admin.db,
    sql`SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE ${matching}`,
  );
}

// The driver (postgres.js 3.4.9, patched) with several hosts, as a failover setup names its
// primary and standby: a connection that reconnected stays "connecting" while it runs the query
// that waited for it, and an error then was taken for a failed connect (another host would be
// tried), so the query was neither answered nor failed. The fault suite saw the change-log tail's
// read hang that way, and live delivery stop for 15 s, after PostgreSQL killed connections.
describe('with several hosts in the URL', () => {
  it("fails a reconnected connection's first query when its backend is killed, and goes on", async () => {
    const url = new URL(inject('databaseUrl'));
    const multiHost = url.toString().replace(`@${url.host}/`, `@${url.host},${url.host}/`);
    const multi = createPostgresDatabase({ url: multiHost, poolSize: 1 });
    const admin = createPostgresDatabase({ url: url.toString(), poolSize: 1 });
    try {
      const [backend] = await queryRows<{ pid: number }>(
        multi.db,
        sql`SELECT pg_backend_pid() AS pid`,
      );
      await killBackend(admin, sql`pid = ${backend!.pid}`);
      await sleep(200); // the pool sees its socket close
      // The pool's only connection is closed: this query is the one its reconnect runs first.
      const marker = `reconnect_first_${Date.now()}`;
      const first = queryRows(multi.db, sql.raw(`/* ${marker} */ SELECT pg_sleep(30)`)).then(
        () => 'answered',
        (error: Error) => `failed: ${String((error.cause as Error | undefined)?.message)}`,
      );
      await killBackend(admin, sql.raw(`state = 'active' AND query LIKE '/* ${marker} */%'`));
      const outcome = await Promise.race([
        first,
        new Promise((resolve) => setTimeout(() => resolve('no answer after 5 s'), 5000)),
      ]);
      expect(outcome).toMatch(/^failed: .*CONNECTION_CLOSED/);
      // And the pool serves the next query.
      expect(await queryRows(multi.db, sql`SELECT 1 AS one`)).toEqual([{ one: 1 }]);
    } finally {
      await multi.close();
      await admin.close();
    }
  });
});

describe('a new connection killed while it reads the server’s types', () => {
  it('still serves the transaction that waited for it, and rejects nothing unhandled', () =>
    // A database of its own: the test locks its pg_type, which every new connection reads.
    withEmptyDatabase('client_types', async (url) => {
      const name = new URL(url).pathname.slice(1);
      const admin = createPostgresDatabase({ url: inject('databaseUrl'), poolSize: 1 });
      const locker = postgres(url, { max: 1, onnotice: () => {} });
      const fresh = createPostgresDatabase({ url, poolSize: 1 });
      const unhandled: unknown[] = [];
      const onUnhandled = (reason: unknown) => unhandled.push(reason);
      process.on('unhandledRejection', onUnhandled);
      try {
        const lock = await locker.reserve();
        await lock`BEGIN`;
        await lock`LOCK TABLE pg_catalog.pg_type IN ACCESS EXCLUSIVE MODE`;
        // A transaction reserves the pool's connection; it opens, then waits on the lock.
        const answered = fresh.db.transaction(async (tx) => queryRows(tx, sql`SELECT 1 AS one`));
        await killBackend(
          admin,
          sql`datname = ${name} AND wait_event_type = 'Lock' AND query LIKE '%typarray%'`,
        );
        await lock`ROLLBACK`;
        lock.release();
        // The reservation is served by the reconnected connection.
        expect(await answered).toEqual([{ one: 1 }]);
        await sleep(100);
        expect(unhandled).toEqual([]);
      } finally {
        process.off('unhandledRejection', onUnhandled);
        await fresh.close();
        await locker.end();
        await admin.close();
      }
    }));
});
