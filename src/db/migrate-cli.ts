import { createDatabase } from './create-database.js';
import { readEnv } from '../env.js';

/** `npm run db:migrate`: apply pending migrations to the configured database and exit. */
const env = readEnv();
const database = await createDatabase(env);
try {
  await database.migrate();
  console.log(
    `migrations applied (${database.kind === 'pglite' ? env.RUNSTATE_DATA_DIR : 'PostgreSQL'})`,
  );
} finally {
  await database.close();
}
