import postgres from 'postgres';
import { inject } from 'vitest';

/** Run `fn` with the URL of a new, empty database on the test server; dropped afterwards. */
export async function withEmptyDatabase<T>(
  label: string,
  fn: (url: string) => Promise<T>,
): Promise<T> {
  const url = new URL(inject('databaseUrl'));
  const admin = postgres(url.toString(), { max: 1, onnotice: () => {} });
  const name = `runstate_${label}_${Date.now()}_${Math.random().toString(36).slice(2, 6)}`;
  await admin.unsafe(`CREATE DATABASE ${name}`);
  url.pathname = `/${name}`;
  try {
    return await fn(url.toString());
  } finally {
    await admin.unsafe(`DROP DATABASE ${name} WITH (FORCE)`);
    await admin.end();
  }
}
