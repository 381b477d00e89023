import postgres from 'postgres';
import { sql as dsql, eq } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/postgres-js';
import { runs } from '../src/db/schema.js';
const url = process.argv[2]!;
const sql = postgres(url, { max: 4 });
const [{ id }] = (await sql`INSERT INTO runs (project) VALUES ('x') RETURNING id`) as unknown as [
  { id: string },
];
async function loop(label: string, f: () => Promise<unknown>) {
  for (let i = 0; i < 200; i++) await f();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < 2000) {
    await f();
    n++;
  }
  const c = process.cpuUsage(c0);
  console.log(
    label.padEnd(40),
    ((performance.now() - t0) / n).toFixed(3),
    'ms/op  cpu',
    ((c.user + c.system) / 1000 / n).toFixed(3),
  );
}
await loop('select prepared', () => sql`SELECT * FROM runs WHERE id = ${id}`);
await loop('select unsafe', () => sql.unsafe('SELECT * FROM runs WHERE id = $1', [id]));
await loop('select unsafe prepare:true', () =>
  sql.unsafe('SELECT * FROM runs WHERE id = $1', [id], { prepare: true }),
);
const db = drizzle(sql);
await loop('select drizzle', () => db.select().from(runs).where(eq(runs.id, id)));
await loop('tx prepared (lock, update)', () =>
  sql.begin(async (tx) => {
    await tx`SELECT * FROM runs WHERE id = ${id} FOR NO KEY UPDATE`;
    await tx`UPDATE runs SET revision = revision + 1 WHERE id = ${id}`;
  }),
);
await loop('tx drizzle (lock, update)', () =>
  db.transaction(async (tx) => {
    await tx.select().from(runs).where(eq(runs.id, id)).for('no key update');
    await tx.execute(dsql`UPDATE runs SET revision = revision + 1 WHERE id = ${id}`);
  }),
);
await sql.end();
