import { createHash, randomBytes } from 'node:crypto';

/**
 * Token secrets: 32 random bytes behind a recognisable prefix (so a leaked one is easy to spot
 * in logs and by secret scanners). Only the SHA-256 is stored; a secret with 256 bits of
 * entropy cannot be guessed from it, so a deliberately slow hash would only slow every request.
 */
const PREFIX = 'rst_';

export function generateSecret(): string {
  return PREFIX + randomBytes(32).toString('base64url');
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** The secret of an `Authorization: Bearer …` header; null when absent or of another scheme. */
export function bearerSecret(header: string | null | undefined): string | null {
  if (header == null) return null;
  const match = /^\s*Bearer\s+(\S+)\s*$/i.exec(header);
  return match ? match[1]! : null;
}

/** The secret in graphql-ws `connectionParams`: `{ token }` or `{ authorization: 'Bearer …' }`. */
export function connectionParamsSecret(params: unknown): string | null {
  if (params == null || typeof params !== 'object') return null;
  const record = params as Record<string, unknown>;
  if (typeof record['token'] === 'string') return record['token'];
  const header = record['authorization'] ?? record['Authorization'];
  return typeof header === 'string' ? bearerSecret(header) : null;
}
