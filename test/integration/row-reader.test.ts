import { randomUUID } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import {
  createPgliteDatabase,
  createPostgresDatabase,
  type Database,
} from '../../src/db/client.js';
import { runs } from '../../src/db/schema.js';
import { getRunById, getRunsByIds, listRuns } from '../../src/runs/run-store.js';

// The run reads that skip drizzle's select() (db/row-reader.ts) answer exactly what select()
// answers, on both drivers: every column, with its type (dates, bigints, JSON, arrays, nulls).

let postgresDb: Database;
let pgliteDb: Database;
beforeAll(async () => {
  postgresDb = createPostgresDatabase({ url: inject('databaseUrl'), poolSize: 2 });
  pgliteDb = await createPgliteDatabase({ dataDir: 'memory://', template: null });
  await pgliteDb.migrate();
}, 60_000);
afterAll(async () => {
  await postgresDb?.close();
  await pgliteDb?.close();
});

it.each(['postgres', 'pglite'] as const)(
  'runs read by hand-written SQL equal select() on %s',
  async (kind) => {
    const { db } = kind === 'postgres' ? postgresDb : pgliteDb;
    const project = `row-reader-${kind}-${Date.now()}`;
    const [full] = await db
      .insert(runs)
      .values({
        project,
        name: 'every column',
        tags: ['a', 'b,c', 'd"e'],
        meta: { nested: { list: [1, 'two', null], ok: true } },
        status: 'RUNNING',
        maxRetries: 3,
        heartbeatTimeout: 30,
        progress: 0.25,
        phase: 'train',
        cacheKey: 'k',
        idempotencyKey: 'key',
        startedAt: new Date('2026-01-02T03:04:05.678Z'),
        heartbeatAt: new Date(),
        scheduledAt: new Date('2030-01-01T00:00:00.001Z'),
      })
      .returning();
    const [bare] = await db
      .insert(runs)
      .values({ project, name: null, status: 'CREATED' })
      .returning();
    const viaSelect = async (id: string) =>
      (await db.select().from(runs).where(eq(runs.id, id)))[0];

    for (const run of [full!, bare!]) {
      const expected = await viaSelect(run.id);
      expect(await getRunById(db, run.id)).toStrictEqual(expected);
      expect(await getRunsByIds(db, [run.id])).toStrictEqual([expected]);
    }
    const page = await listRuns(db, {
      projects: [project],
      limit: 10,
      direction: 'ASC',
      orderField: 'CREATED_AT',
    } as never);
    expect(page).toStrictEqual(
      await db
        .select()
        .from(runs)
        .where(eq(runs.project, project))
        .orderBy(runs.createdAt, runs.id),
    );
    expect(page.map((r) => r.id)).toEqual([full!.id, bare!.id]);
    expect(await getRunById(db, randomUUID())).toBeNull();
  },
);
