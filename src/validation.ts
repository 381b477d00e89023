import { BadUserInputError } from './errors.js';

/**
 * Checks for input that GraphQL's own type system lets through. Each throws BadUserInputError
 * naming the field, before anything is written.
 */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Limits that are part of the API contract (documented in schema.graphql). */
export const LIMITS = {
  projectLength: 200,
  nameLength: 500,
  tags: 50,
  tagLength: 100,
  metaBytes: 64 * 1024,
  /** A transition's meta (Polyaxon's meta_info). */
  changeMetaBytes: 16 * 1024,
  attributesBytes: 64 * 1024,
  outcomeLength: 50,
  /** How far in the future a reported time (`at`, `createdAt`) may be: clocks differ a little. */
  clockSkewSeconds: 5,
  reasonLength: 200,
  messageLength: 10_000,
  phaseLength: 500,
  idempotencyKeyLength: 200,
  measurementNameLength: 200,
  measurementsPerBatch: 10_000,
  transitionsPerBatch: 500,
  filterValues: 100,
  maxRetries: 100,
  dependencies: 100,
  eventTriggers: 20,
  /** A step's name among its parent's children. */
  opLength: 200,
  /** Levels of parents above a run. */
  pipelineDepth: 8,
  /** 30 days. */
  timeoutSeconds: 2_592_000,
  pageSize: 500,
} as const;

export function checkUuid(field: string, value: string): string {
  if (!UUID.test(value)) throw new BadUserInputError(field, 'must be a UUID');
  return value.toLowerCase();
}

interface StringRule {
  min?: number;
  max: number;
}

/** A string within length bounds; PostgreSQL text cannot hold NUL characters. */
export function checkString(field: string, value: string, rule: StringRule): string {
  const min = rule.min ?? 0;
  if (value.length < min) {
    throw new BadUserInputError(
      field,
      min === 1 ? 'must not be empty' : `must have at least ${min} characters`,
    );
  }
  if (value.length > rule.max)
    throw new BadUserInputError(field, `must have at most ${rule.max} characters`);
  if (value.includes('\u0000'))
    throw new BadUserInputError(field, 'must not contain NUL characters');
  if (hasLoneSurrogate(value)) throw new BadUserInputError(field, 'must be valid Unicode');
  if (min >= 1 && value.trim().length === 0)
    throw new BadUserInputError(field, 'must not be blank');
  return value;
}

export function checkOptionalString(
  field: string,
  value: string | null | undefined,
  rule: StringRule,
): string | null {
  return value == null ? null : checkString(field, value, rule);
}

/** A list with at most `max` entries. */
export function checkListLength<T>(
  field: string,
  value: readonly T[],
  max: number,
  min = 0,
): readonly T[] {
  if (value.length < min)
    throw new BadUserInputError(field, `must have at least ${min} entr${min === 1 ? 'y' : 'ies'}`);
  if (value.length > max) throw new BadUserInputError(field, `must have at most ${max} entries`);
  return value;
}

/** A page size in [1, max]; `fallback` when omitted. */
export function checkFirst(
  field: string,
  value: number | null | undefined,
  fallback: number,
): number {
  if (value == null) return fallback;
  if (!Number.isInteger(value) || value < 1)
    throw new BadUserInputError(field, 'must be at least 1');
  if (value > LIMITS.pageSize)
    throw new BadUserInputError(field, `must be at most ${LIMITS.pageSize}`);
  return value;
}

/** 0001-01-01T00:00:00Z (Date.UTC would read year 1 as 1901). */
const FIRST_TIME = -62_135_596_800_000;
const LAST_TIME = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/** A date-time PostgreSQL can store and a cursor can carry: years 1 to 9999. */
export function checkDate(field: string, value: Date): Date {
  const time = value.getTime();
  if (Number.isNaN(time) || time < FIRST_TIME || time > LAST_TIME) {
    throw new BadUserInputError(field, 'must be a date-time between the years 1 and 9999');
  }
  return value;
}

/** A run's tags: at most LIMITS.tags, each 1–LIMITS.tagLength characters; duplicates dropped. */
export function checkTags(field: string, tags: readonly string[]): string[] {
  return [
    ...new Set(
      checkListLength(field, tags, LIMITS.tags).map((tag, i) =>
        checkString(`${field}[${i}]`, tag, { min: 1, max: LIMITS.tagLength }),
      ),
    ),
  ];
}

/**
 * A time reported by a client for something that happened elsewhere (a change's `at`, an
 * import's `createdAt`): a valid date, and not in the future (a few seconds of clock skew
 * allowed). Whether it is after the run's last change is checked under the run's lock.
 */
export function checkReportedTime(field: string, value: Date): Date {
  checkDate(field, value);
  if (value.getTime() > Date.now() + LIMITS.clockSkewSeconds * 1000) {
    throw new BadUserInputError(field, 'is in the future');
  }
  return value;
}

/** Optional strings of a list (filter values): each checked like a string field. */
export function checkStringList(
  field: string,
  values: readonly string[] | null | undefined,
  rule: { min?: number; max: number },
  maxEntries: number,
): string[] | null {
  if (values == null) return null;
  checkListLength(field, values, maxEntries);
  return values.map((v, i) => checkString(`${field}[${i}]`, v, rule));
}

export function checkIntInRange(field: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new BadUserInputError(field, `must be a whole number between ${min} and ${max}`);
  }
  return value;
}

export function checkFiniteInRange(field: string, value: number, min: number, max: number): number {
  if (!Number.isFinite(value)) throw new BadUserInputError(field, 'must be a finite number');
  if (value < min || value > max)
    throw new BadUserInputError(field, `must be between ${min} and ${max}`);
  return value;
}

/**
 * A JSON object of bounded size whose numbers are all finite and whose strings hold no NUL.
 * JSON.parse turns 1e400 into Infinity, which jsonb would silently store as null.
 */
export function checkJsonObject(
  field: string,
  value: unknown,
  maxBytes: number = LIMITS.metaBytes,
): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new BadUserInputError(field, 'must be a JSON object');
  }
  checkJsonValue(field, value, 0);
  const text = JSON.stringify(value);
  if (Buffer.byteLength(text, 'utf8') > maxBytes) {
    throw new BadUserInputError(field, `must be at most ${maxBytes} bytes as JSON`);
  }
  // A plain copy: GraphQL literals arrive as null-prototype objects, which drizzle cannot take.
  return JSON.parse(text) as Record<string, unknown>;
}

/**
 * Any JSON value (an object, a list, a string, a number, a boolean, null) of bounded size and
 * depth, with the checks of checkJsonObject. Answers a plain copy.
 */
export function checkJson(field: string, value: unknown, rule: { maxBytes: number }): unknown {
  checkJsonValue(field, value, 0);
  const text = JSON.stringify(value);
  if (Buffer.byteLength(text, 'utf8') > rule.maxBytes) {
    throw new BadUserInputError(field, `must be at most ${rule.maxBytes} bytes as JSON`);
  }
  return JSON.parse(text) as unknown;
}

const MAX_JSON_DEPTH = 32;

function checkJsonValue(field: string, value: unknown, depth: number): void {
  if (depth > MAX_JSON_DEPTH)
    throw new BadUserInputError(field, `must nest at most ${MAX_JSON_DEPTH} levels`);
  if (value === null || typeof value === 'boolean') return;
  if (typeof value === 'number') {
    if (!Number.isFinite(value))
      throw new BadUserInputError(field, 'must not contain NaN or Infinity');
    return;
  }
  if (typeof value === 'string') {
    if (value.includes('\u0000') || hasLoneSurrogate(value)) {
      throw new BadUserInputError(field, 'must not contain NUL characters or invalid Unicode');
    }
    return;
  }
  if (Array.isArray(value)) {
    for (const item of value) checkJsonValue(field, item, depth + 1);
    return;
  }
  if (typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      checkJsonValue(field, key, depth + 1);
      checkJsonValue(field, item, depth + 1);
    }
    return;
  }
  throw new BadUserInputError(field, 'must be plain JSON');
}

function hasLoneSurrogate(value: string): boolean {
  return !value.isWellFormed();
}
