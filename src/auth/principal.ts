import type { ApiRole } from '../db/schema.js';

/**
 * Who is asking: the API token behind a request, or the service itself. Every read is filtered
 * by `projects` and every write checked against it; `role` gates what may be called at all.
 */
export interface Principal {
  /** The token's id; null when auth is off or for the service's own moves. */
  readonly tokenId: string | null;
  /** The token's name, recorded as the actor of the changes it makes; null as for tokenId. */
  readonly name: string | null;
  readonly role: ApiRole;
  /** The projects the token is limited to; null: every project. */
  readonly projects: readonly string[] | null;
}

/** The service itself (the reaper), and every caller when auth is switched off. */
export const UNRESTRICTED: Principal = Object.freeze({
  tokenId: null,
  name: null,
  role: 'ADMIN',
  projects: null,
});

const RANK: Record<ApiRole, number> = { READ: 0, WRITE: 1, ADMIN: 2 };

/** READ < WRITE < ADMIN: each role may do everything the ones before it may. */
export function hasRole(principal: Principal, role: ApiRole): boolean {
  return RANK[principal.role] >= RANK[role];
}

export function canSeeProject(principal: Pick<Principal, 'projects'>, project: string): boolean {
  return principal.projects == null || principal.projects.includes(project);
}

/**
 * The projects a read may cover: the ones asked for (null: all) narrowed to the token's scope.
 * An empty list matches nothing.
 */
export function visibleProjects(
  principal: Pick<Principal, 'projects'>,
  requested: readonly string[] | null,
): readonly string[] | null {
  if (principal.projects == null) return requested;
  if (requested == null) return principal.projects;
  return requested.filter((p) => principal.projects!.includes(p));
}
