import { and, desc, eq, inArray, isNull, ne, sql } from 'drizzle-orm';
import type { Executor } from '../db/client.js';
import { apiTokens, type ApiRole, type ApiTokenRow } from '../db/schema.js';
import { getPgErrorCode } from '../errors.js';

/** SQL of API tokens. Secrets never reach this file: only their hashes. */

const UNIQUE_VIOLATION = '23505';

/** The advisory lock that serialises the first start's admin token across instances. */
const BOOTSTRAP_LOCK_KEY = 7_246_153_002;

/** Serialise the first start's admin-token bootstrap across instances (until the commit). */
export async function lockTokenBootstrap(tx: Executor): Promise<void> {
  await tx.execute(
    sql`/* lockTokenBootstrap */ SELECT pg_advisory_xact_lock(${BOOTSTRAP_LOCK_KEY})`,
  );
}

export interface NewApiToken {
  name: string;
  role: ApiRole;
  projects: readonly string[] | null;
  secretHash: string;
  createdBy: string | null;
}

/** Insert a token; null when a live token already has this name. */
export async function insertToken(ex: Executor, token: NewApiToken): Promise<ApiTokenRow | null> {
  try {
    const [row] = await ex
      .insert(apiTokens)
      .values({ ...token, projects: token.projects == null ? null : [...token.projects] })
      .returning();
    return row!;
  } catch (error) {
    if (getPgErrorCode(error) === UNIQUE_VIOLATION) return null;
    throw error;
  }
}

export async function findLiveTokenByHash(
  ex: Executor,
  secretHash: string,
): Promise<ApiTokenRow | null> {
  const [row] = await ex
    .select()
    .from(apiTokens)
    .where(and(eq(apiTokens.secretHash, secretHash), isNull(apiTokens.revokedAt)));
  return row ?? null;
}

export async function getToken(ex: Executor, id: string): Promise<ApiTokenRow | null> {
  const [row] = await ex.select().from(apiTokens).where(eq(apiTokens.id, id));
  return row ?? null;
}

/** Revoke (a second revoke keeps the first time); null when there is no such token. */
export async function revokeToken(ex: Executor, id: string): Promise<ApiTokenRow | null> {
  const [row] = await ex
    .update(apiTokens)
    .set({ revokedAt: sql`coalesce(${apiTokens.revokedAt}, now())` })
    .where(eq(apiTokens.id, id))
    .returning();
  return row ?? null;
}

export async function listTokens(ex: Executor): Promise<ApiTokenRow[]> {
  return ex.select().from(apiTokens).orderBy(desc(apiTokens.createdAt), desc(apiTokens.id));
}

/** Which of these tokens are revoked or gone. */
export async function findRevokedIds(ex: Executor, ids: readonly string[]): Promise<string[]> {
  if (ids.length === 0) return [];
  const live = await ex
    .select({ id: apiTokens.id })
    .from(apiTokens)
    .where(and(inArray(apiTokens.id, [...ids]), isNull(apiTokens.revokedAt)));
  const liveIds = new Set(live.map((r) => r.id));
  return ids.filter((id) => !liveIds.has(id));
}

/** Whether a live admin token for every project exists (the first start creates one if not). */
export async function hasLiveAdmin(ex: Executor): Promise<boolean> {
  const rows = await ex
    .select({ id: apiTokens.id })
    .from(apiTokens)
    .where(
      and(eq(apiTokens.role, 'ADMIN'), isNull(apiTokens.revokedAt), isNull(apiTokens.projects)),
    )
    .limit(1);
  return rows.length > 0;
}

/** Revoke the live tokens of this name whose hash differs (a rotated environment token). */
export async function revokeOthersNamed(
  ex: Executor,
  name: string,
  secretHash: string,
): Promise<void> {
  await ex
    .update(apiTokens)
    .set({ revokedAt: sql`now()` })
    .where(
      and(
        eq(apiTokens.name, name),
        isNull(apiTokens.revokedAt),
        ne(apiTokens.secretHash, secretHash),
      ),
    );
}
