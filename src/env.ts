import { z } from 'zod';

/**
 * The one reader of `process.env`. Everything configurable is here, validated at start-up, so a
 * typo in a variable fails loudly instead of silently falling back to a default.
 */
const EnvSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(4000),
  HOST: z.string().min(1).default('0.0.0.0'),
  /** postgres://… of a real PostgreSQL; unset: embedded PGlite under RUNSTATE_DATA_DIR. */
  DATABASE_URL: z.string().url().optional(),
  RUNSTATE_DATA_DIR: z.string().min(1).default('./.runstate'),
  /** Pool size for a real PostgreSQL. */
  DATABASE_POOL_SIZE: z.coerce.number().int().min(2).max(500).default(20),
  GRAPHQL_PATH: z.string().startsWith('/').default('/graphql'),
  GRAPHIQL: z
    .enum(['true', 'false'])
    .default('true')
    .transform((v) => v === 'true'),
  /** Events a subscriber may fall behind by before it is closed and must resume from its cursor. */
  SUBSCRIBER_BUFFER: z.coerce.number().int().min(10).max(1_000_000).default(10_000),
  /** How often each instance's reaper looks for runs past a deadline. */
  REAPER_INTERVAL_MS: z.coerce.number().int().min(10).max(3_600_000).default(1000),
  /** Seconds a run may stay STOPPING before the reaper moves it to STOPPED. */
  STOP_TIMEOUT: z.coerce.number().int().min(1).max(2_592_000).default(300),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
});

export type Env = z.infer<typeof EnvSchema>;

/** Parse and validate the environment; throws with every problem listed. */
export function readEnv(source: NodeJS.ProcessEnv = process.env): Env {
  const cleaned = Object.fromEntries(
    Object.entries(source).filter(([, value]) => value !== undefined && value !== ''),
  );
  const parsed = EnvSchema.safeParse(cleaned);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new Error(`invalid configuration:\n  ${problems.join('\n  ')}`);
  }
  return parsed.data;
}
