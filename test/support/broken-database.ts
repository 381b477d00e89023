import { Writable } from 'node:stream';
import postgres from 'postgres';
import { pino, type Logger } from 'pino';
import { afterAll, beforeAll } from 'vitest';
import { createPostgresDatabase } from '../../src/db/client.js';
import { withEmptyDatabase } from './empty-database.js';
import { startServer, type TestServer } from './server.js';

/** A logger whose JSON lines are kept in `lines`, for a test to read what was logged. */
export function captureLogs<Line extends { level: number }>() {
  const lines: Line[] = [];
  const logger: Logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line));
        done();
      },
    }),
  );
  /** The lines at level error or above. */
  const errorLines = () => lines.filter((l) => l.level >= 50);
  return { lines, logger, errorLines };
}

/**
 * The test file's server on a database of its own (migrated, then dropped after the file) in
 * which `table` is renamed away: reading it fails with an error nothing expects, the bug a test
 * of unexpected errors needs. The object it answers is filled in by the time the first test runs.
 */
export function useServerWithoutTable(
  label: string,
  table: string,
  logger: Logger,
  /** Rename it once the server has started (a table its start reads: api_tokens). */
  options: { afterStart?: boolean } = {},
): TestServer {
  const server = {} as TestServer;
  let finish: () => void;
  let finished: Promise<void>;
  beforeAll(async () => {
    await new Promise<void>((started, failed) => {
      finished = withEmptyDatabase(label, async (url) => {
        const database = createPostgresDatabase({ url, poolSize: 4 });
        await database.migrate();
        const sql = postgres(url, { max: 1, onnotice: () => {} });
        const rename = () => sql.unsafe(`ALTER TABLE ${table} RENAME TO ${table}_moved_away`);
        if (!options.afterStart) await rename();
        Object.assign(server, await startServer({ database, logger }));
        if (options.afterStart) await rename();
        await sql.end();
        started();
        await new Promise<void>((resolve) => (finish = resolve));
        await server.stop();
        await database.close();
      }).catch(failed);
    });
  });
  afterAll(async () => {
    finish?.();
    await finished;
  });
  return server;
}
