import type { Env } from '../env.js';
import { createPgliteDatabase, createPostgresDatabase, type Database } from './client.js';

/** postgres.js when DATABASE_URL is set, else embedded PGlite under RUNSTATE_DATA_DIR. */
export async function createDatabase(
  env: Pick<
    Env,
    | 'DATABASE_URL'
    | 'DATABASE_POOL_SIZE'
    | 'DATABASE_CONNECT_TIMEOUT'
    | 'RUNSTATE_DATA_DIR'
    | 'OTEL_EXPORTER_OTLP_ENDPOINT'
  >,
): Promise<Database> {
  if (env.DATABASE_URL) {
    return createPostgresDatabase({
      url: env.DATABASE_URL,
      poolSize: env.DATABASE_POOL_SIZE,
      connectTimeoutSeconds: env.DATABASE_CONNECT_TIMEOUT,
      // A span per statement (PGlite's are not traced).
      trace: env.OTEL_EXPORTER_OTLP_ENDPOINT !== undefined,
    });
  }
  return createPgliteDatabase({ dataDir: env.RUNSTATE_DATA_DIR });
}
