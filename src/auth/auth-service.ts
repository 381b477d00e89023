import type { Database } from '../db/client.js';
import type { ApiRole, ApiTokenRow } from '../db/schema.js';
import { BadUserInputError, NotFoundError, UnauthenticatedError } from '../errors.js';
import type { Logger } from '../logger.js';
import { checkString, checkStringList, checkUuid, LIMITS } from '../validation.js';
import { UNRESTRICTED, type Principal } from './principal.js';
import { generateSecret, hashSecret } from './secrets.js';
import * as store from './token-store.js';

/**
 * API tokens: authenticating requests, issuing and revoking tokens, and telling open
 * subscriptions that their token was revoked, on every instance.
 *
 * A token is looked up by the SHA-256 of its secret and kept in a small cache for a few seconds.
 * A revocation empties that cache entry on the instance that revoked at once, and on the others
 * through a NOTIFY; a periodic check of the tokens behind open subscriptions covers a
 * notification lost while the listening connection was down.
 */
export interface AuthService {
  /** False only when auth was switched off explicitly: every caller is then unrestricted. */
  readonly enabled: boolean;
  /** The principal of a secret; UNAUTHENTICATED when it is missing, unknown or revoked. */
  authenticate(secret: string | null): Promise<Principal>;
  createToken(
    by: Principal,
    input: { name: string; role: ApiRole; projects?: readonly string[] | null },
  ): Promise<{ secret: string; token: ApiTokenRow }>;
  revokeToken(by: Principal, id: string): Promise<ApiTokenRow>;
  listTokens(by: Principal): Promise<ApiTokenRow[]>;
  /** Run `callback` once when the token is revoked. Answers a function that stops watching. */
  onRevoked(tokenId: string, callback: () => void): () => void;
  /**
   * Make sure an administrator can get in: adopt RUNSTATE_ADMIN_TOKEN, or create an admin token
   * when there is no live one. Answers a newly created secret (to be shown once), or null.
   */
  bootstrap(options: { adminToken?: string | undefined }): Promise<string | null>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

const CHANNEL = 'runstate_tokens';
const CACHE_TTL_MS = 5_000;
const CACHE_MAX = 10_000;
const SWEEP_INTERVAL_MS = 5_000;
export const GENERATED_ADMIN_NAME = 'admin';
export const ENV_ADMIN_NAME = 'admin (RUNSTATE_ADMIN_TOKEN)';

export function principalOf(row: ApiTokenRow): Principal {
  return Object.freeze({
    tokenId: row.id,
    name: row.name,
    role: row.role,
    projects: row.projects == null ? null : Object.freeze([...row.projects]),
  });
}

/** A scoped admin manages only tokens inside its own projects. */
function canManage(by: Principal, projects: readonly string[] | null): boolean {
  if (by.projects == null) return true;
  return projects != null && projects.every((p) => by.projects!.includes(p));
}

export function createAuthService(options: {
  database: Database;
  logger: Logger;
  enabled: boolean;
}): AuthService {
  const { database, logger, enabled } = options;
  const db = database.db;
  /** Principals of recently seen secrets, by secret (in this process's memory only). */
  const cache = new Map<string, { principal: Principal; expires: number }>();
  const watchers = new Map<string, Set<() => void>>();
  let unlisten: (() => Promise<void>) | null = null;
  let sweepTimer: NodeJS.Timeout | null = null;

  function forget(tokenId: string): void {
    for (const [secret, entry] of cache)
      if (entry.principal.tokenId === tokenId) cache.delete(secret);
    const callbacks = watchers.get(tokenId);
    watchers.delete(tokenId);
    for (const callback of callbacks ?? []) {
      try {
        callback();
      } catch (error) {
        logger.error({ err: error }, 'a revocation callback failed');
      }
    }
  }

  async function sweep(): Promise<void> {
    if (watchers.size === 0) return;
    try {
      for (const id of await store.findRevokedIds(db, [...watchers.keys()])) forget(id);
    } catch (error) {
      logger.warn({ err: error }, 'checking open subscriptions for revoked tokens failed');
    }
  }

  return {
    enabled,

    async authenticate(secret) {
      if (!enabled) return UNRESTRICTED;
      if (secret == null || secret.length === 0 || secret.length > 200) {
        throw new UnauthenticatedError();
      }
      // Keyed by the secret itself: a hash per request was most of the cost of a cache hit.
      const now = Date.now();
      const cached = cache.get(secret);
      if (cached && cached.expires > now) return cached.principal;
      const row = await store.findLiveTokenByHash(db, hashSecret(secret));
      if (!row) {
        cache.delete(secret);
        throw new UnauthenticatedError('the API token is unknown or revoked');
      }
      const principal = principalOf(row);
      cache.delete(secret);
      if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value!);
      cache.set(secret, { principal, expires: now + CACHE_TTL_MS });
      return principal;
    },

    async createToken(by, input) {
      const name = checkString('input.name', input.name, { min: 1, max: LIMITS.nameLength });
      const projects = checkStringList(
        'input.projects',
        input.projects,
        { min: 1, max: LIMITS.projectLength },
        LIMITS.filterValues,
      );
      if (projects != null && projects.length === 0) {
        throw new BadUserInputError(
          'input.projects',
          'must name at least one project (or be null)',
        );
      }
      if (!canManage(by, projects)) {
        throw new BadUserInputError(
          'input.projects',
          'a token limited to projects may only create tokens limited to some of them',
        );
      }
      const secret = generateSecret();
      const token = await store.insertToken(db, {
        name,
        role: input.role,
        projects: projects == null ? null : [...new Set(projects)],
        secretHash: hashSecret(secret),
        createdBy: by.name,
      });
      if (!token) throw new BadUserInputError('input.name', 'a live token with this name exists');
      return { secret, token };
    },

    async revokeToken(by, id) {
      const tokenId = checkUuid('id', id);
      const existing = await store.getToken(db, tokenId);
      if (!existing || !canManage(by, existing.projects)) throw new NotFoundError('token', id);
      const revoked = (await store.revokeToken(db, tokenId))!;
      forget(tokenId);
      // The other instances drop their cache entry and end this token's subscriptions.
      await database.notify(CHANNEL, tokenId).catch((error: unknown) => {
        logger.warn({ err: error }, 'could not notify other instances of a revoked token');
      });
      return revoked;
    },

    async listTokens(by) {
      return (await store.listTokens(db)).filter((t) => canManage(by, t.projects));
    },

    onRevoked(tokenId, callback) {
      let callbacks = watchers.get(tokenId);
      if (!callbacks) watchers.set(tokenId, (callbacks = new Set()));
      callbacks.add(callback);
      return () => {
        const current = watchers.get(tokenId);
        current?.delete(callback);
        if (current?.size === 0) watchers.delete(tokenId);
      };
    },

    async bootstrap({ adminToken }) {
      if (!enabled) return null;
      return db.transaction(async (tx) => {
        await store.lockTokenBootstrap(tx);
        if (adminToken) {
          const secretHash = hashSecret(adminToken);
          await store.revokeOthersNamed(tx, ENV_ADMIN_NAME, secretHash);
          if (!(await store.findLiveTokenByHash(tx, secretHash))) {
            const created = await store.insertToken(tx, {
              name: ENV_ADMIN_NAME,
              role: 'ADMIN',
              projects: null,
              secretHash,
              createdBy: null,
            });
            if (!created) throw new Error('could not store RUNSTATE_ADMIN_TOKEN');
          }
          return null;
        }
        if (await store.hasLiveAdmin(tx)) return null;
        const secret = generateSecret();
        const created = await store.insertToken(tx, {
          name: GENERATED_ADMIN_NAME,
          role: 'ADMIN',
          projects: null,
          secretHash: hashSecret(secret),
          createdBy: null,
        });
        if (!created) {
          throw new Error(
            `a live token named "${GENERATED_ADMIN_NAME}" exists but is not an admin for every ` +
              'project; set RUNSTATE_ADMIN_TOKEN to get in',
          );
        }
        return secret;
      });
    },

    async start() {
      if (!enabled) return;
      unlisten = await database.listen(
        CHANNEL,
        (payload) => forget(payload),
        () => void sweep(),
      );
      sweepTimer = setInterval(() => void sweep(), SWEEP_INTERVAL_MS);
      sweepTimer.unref();
    },

    async stop() {
      if (sweepTimer) clearInterval(sweepTimer);
      sweepTimer = null;
      await unlisten?.();
      unlisten = null;
    },
  };
}
