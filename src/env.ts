import { z } from 'zod';
import { DEFAULT_LIMITS, type Limits } from './limits/limits.js';

const bool = z.enum(['true', 'false']).transform((v) => v === 'true');
const count = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/**
 * The one reader of `process.env`. Everything configurable is here, validated at start-up, so a
 * typo in a variable fails loudly instead of silently falling back to a default.
 */
const EnvSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(4000),
  /** Default 0.0.0.0; with RUNSTATE_AUTH=off, 127.0.0.1 (and only loopback is allowed). */
  HOST: z.string().min(1).optional(),
  /** API tokens are checked unless this is explicitly `off`. */
  RUNSTATE_AUTH: z.enum(['on', 'off']).default('on'),
  /** An admin token to adopt (else the first start creates one and prints it once). */
  RUNSTATE_ADMIN_TOKEN: z.string().min(24, 'must be at least 24 characters').max(200).optional(),
  /** `production` turns GraphiQL and introspection off unless they are set explicitly. */
  NODE_ENV: z.string().optional(),
  /**
   * postgres://… of a real PostgreSQL; unset: embedded PGlite under RUNSTATE_DATA_DIR. Several
   * hosts (`postgres://u@h1:5432,h2:5432/db?target_session_attrs=read-write`) for a failover.
   */
  DATABASE_URL: z
    .string()
    .refine(isPostgresUrl, 'must be a postgres:// URL (several hosts separated by commas)')
    .optional(),
  /** Seconds a new database connection may take before the attempt fails (and requests get 503). */
  DATABASE_CONNECT_TIMEOUT: z.coerce.number().int().min(1).max(600).default(5),
  RUNSTATE_DATA_DIR: z.string().min(1).default('./.runstate'),
  /** Pool size for a real PostgreSQL. */
  DATABASE_POOL_SIZE: z.coerce.number().int().min(2).max(500).default(20),
  GRAPHQL_PATH: z.string().startsWith('/').default('/graphql'),
  GRAPHIQL: bool.optional(),
  /** Serve the dashboard at /. */
  DASHBOARD: bool.default(true),
  INTROSPECTION: bool.optional(),
  MAX_DEPTH: count(1, 1000).default(DEFAULT_LIMITS.maxDepth),
  MAX_ALIASES: count(0, 100_000).default(DEFAULT_LIMITS.maxAliases),
  MAX_DIRECTIVES: count(0, 100_000).default(DEFAULT_LIMITS.maxDirectives),
  MAX_COST: count(1, 1e9).default(DEFAULT_LIMITS.maxCost),
  MAX_TOKENS: count(100, 10_000_000).default(DEFAULT_LIMITS.maxTokens),
  MAX_BODY_BYTES: count(1024, 1e9).default(DEFAULT_LIMITS.maxBodyBytes),
  MAX_WS_FRAME_BYTES: count(1024, 1e9).default(DEFAULT_LIMITS.maxWsFrameBytes),
  /**
   * Origins (scheme://host[:port], comma-separated) whose pages may call the API from a browser
   * (CORS, and WebSocket Origin); unset: only the service's own origin. `*` allows any.
   */
  CORS_ORIGINS: z
    .string()
    .transform((value) =>
      value
        .split(',')
        .map((origin) => origin.trim())
        .filter(Boolean),
    )
    .pipe(z.array(z.string().refine(isOrigin, 'each must be scheme://host[:port], or *')))
    .optional(),
  MAX_SUBSCRIPTIONS_PER_CONNECTION: count(1, 1e6).default(
    DEFAULT_LIMITS.maxSubscriptionsPerConnection,
  ),
  MAX_SUBSCRIPTIONS_PER_TOKEN: count(1, 1e7).default(DEFAULT_LIMITS.maxSubscriptionsPerToken),
  /** Mutations per second per token and instance; 0 turns the limit off. */
  MUTATION_RATE_LIMIT: count(0, 1e7).default(DEFAULT_LIMITS.mutationsPerSecond),
  MUTATION_BURST: count(1, 1e7).default(DEFAULT_LIMITS.mutationBurst),
  /** Events a subscriber may fall behind by before it is closed and must resume from its cursor. */
  SUBSCRIBER_BUFFER: z.coerce.number().int().min(10).max(1_000_000).default(10_000),
  /** How often each instance's reaper looks for runs past a deadline. */
  REAPER_INTERVAL_MS: z.coerce.number().int().min(10).max(3_600_000).default(1000),
  /** Seconds a run may stay STOPPING before the reaper moves it to STOPPED. */
  STOP_TIMEOUT: z.coerce.number().int().min(1).max(2_592_000).default(300),
  /**
   * Days a run is kept once it is done (with its steps, history and points), and days points
   * are kept; unset: for ever. Deleted by the reaper, a little at a time, once across instances.
   */
  RETENTION_DAYS: z.coerce.number().int().min(1).max(36_500).optional(),
  /** Hours an idempotency key's first answer is kept (transitions, measurement batches). */
  IDEMPOTENCY_TTL_HOURS: z.coerce.number().int().min(1).max(87_600).default(24),
  /** On SIGTERM/SIGINT: how long in-flight requests and mutations may take to finish. */
  DRAIN_TIMEOUT_MS: z.coerce.number().int().min(0).max(600_000).default(10_000),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
  /**
   * OpenTelemetry: an OTLP/HTTP collector (`http://collector:4318`; spans go to its /v1/traces).
   * Unset: no tracing at all.
   */
  OTEL_EXPORTER_OTLP_ENDPOINT: z.string().url().optional(),
  OTEL_SERVICE_NAME: z.string().min(1).default('runstate'),
});

export type Env = z.infer<typeof EnvSchema>;

/** Parse and validate the environment; throws with every problem listed. */
export function readEnv(source: NodeJS.ProcessEnv = process.env): Env {
  return parseEnv(EnvSchema, source);
}

/** Empty variables count as unset; every problem is listed in the error. */
function parseEnv<T>(schema: z.ZodType<T>, source: NodeJS.ProcessEnv): T {
  const cleaned = Object.fromEntries(
    Object.entries(source).filter(([, value]) => value !== undefined && value !== ''),
  );
  const parsed = schema.safeParse(cleaned);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new Error(`invalid configuration:\n  ${problems.join('\n  ')}`);
  }
  return parsed.data;
}

function isPostgresUrl(value: string): boolean {
  const match = /^postgres(?:ql)?:\/\/(?:[^@/?]*@)?([^/?]*)/.exec(value);
  if (!match?.[1]) return false;
  try {
    // As postgres.js reads it: the first of the hosts stands for all.
    new URL(value.replace(match[1], match[1].split(',')[0]!));
    return true;
  } catch {
    return false;
  }
}

function isOrigin(value: string): boolean {
  if (value === '*') return true;
  try {
    const url = new URL(value);
    return /^https?:$/.test(url.protocol) && url.origin === value.replace(/\/$/, '');
  } catch {
    return false;
  }
}

/** The limits the environment sets. */
export function limitsFrom(env: Env): Limits {
  const production = env.NODE_ENV === 'production';
  return {
    maxDepth: env.MAX_DEPTH,
    maxAliases: env.MAX_ALIASES,
    maxDirectives: env.MAX_DIRECTIVES,
    maxCost: env.MAX_COST,
    maxTokens: env.MAX_TOKENS,
    maxBodyBytes: env.MAX_BODY_BYTES,
    maxWsFrameBytes: env.MAX_WS_FRAME_BYTES,
    maxSubscriptionsPerConnection: env.MAX_SUBSCRIPTIONS_PER_CONNECTION,
    maxSubscriptionsPerToken: env.MAX_SUBSCRIPTIONS_PER_TOKEN,
    mutationsPerSecond: env.MUTATION_RATE_LIMIT,
    mutationBurst: env.MUTATION_BURST,
    introspection: env.INTROSPECTION ?? !production,
  };
}

/** GraphiQL: on unless set, or unless NODE_ENV=production. */
export function graphiqlFrom(env: Env): boolean {
  return env.GRAPHIQL ?? env.NODE_ENV !== 'production';
}

const CliEnvSchema = z.object({
  /** Where the CLI's client commands (runs, watch, token) find the service. */
  RUNSTATE_URL: z.string().url().default('http://localhost:4000/graphql'),
  /** The API token they send. */
  RUNSTATE_TOKEN: z.string().min(1).optional(),
  /** https://no-color.org: any value turns colors off. */
  NO_COLOR: z.string().optional(),
  /** Colors even when stdout is not a terminal. */
  FORCE_COLOR: z.string().optional(),
});

export type CliEnv = z.infer<typeof CliEnvSchema>;

/** The environment of the `runstate` CLI's client commands. */
export function readCliEnv(source: NodeJS.ProcessEnv = process.env): CliEnv {
  return parseEnv(CliEnvSchema, source);
}
