// Who is calling and what they may do: pure rules, the same for API tokens and OIDC users.
//   viewer: read the jobs it may see;  user: also submit and cancel them, manage its own tokens;
//   admin: everything, every job and token.
// A caller sees the jobs it created through the REST API and, for jobs applied with kubectl, those
// of the namespaces its groups map to (Kubernetes RBAC governs the InferenceJobs themselves).
import type { Job, Visibility } from '../../db/job-store.ts';
import type { Role } from '../../db/token-store.ts';

export interface Principal {
  /** The user: the OIDC user claim, or the API token's owner. */
  subject: string;
  role: Role;
  /** Namespaces whose kubectl-applied jobs this caller sees. */
  namespaces: string[];
  via: 'api-token' | 'oidc';
}

const RANK: Record<Role, number> = { viewer: 0, user: 1, admin: 2 };

export const atLeast = (p: Principal, role: Role) => RANK[p.role] >= RANK[role];

/** What a list is narrowed to for this caller (undefined: an admin sees all). */
export function visibilityOf(p: Principal): Visibility | undefined {
  return p.role === 'admin' ? undefined : { subject: p.subject, namespaces: p.namespaces };
}

export function canSee(p: Principal, job: Pick<Job, 'created_by' | 'namespace'>): boolean {
  if (p.role === 'admin') return true;
  return job.created_by === p.subject || (job.namespace !== null && p.namespaces.includes(job.namespace));
}

/** Groups -> role and namespaces, from the OIDC configuration. */
export interface GroupMapping {
  admin: string[];
  user: string[];
  viewer: string[];
  /** group -> namespace whose kubectl-applied jobs its members see. */
  namespaces: Record<string, string>;
}

/**
 * The role of a member of `groups`: admin, user, viewer by the configured groups; with no user
 * groups configured every signed-in user is a user. Undefined: in none (refused with 403).
 */
export function roleOf(groups: string[], m: GroupMapping): Role | undefined {
  const inAny = (list: string[]) => groups.some((g) => list.includes(g));
  if (inAny(m.admin)) return 'admin';
  if (m.user.length === 0 || inAny(m.user)) return 'user';
  if (inAny(m.viewer)) return 'viewer';
  return undefined;
}

export function namespacesOf(groups: string[], m: GroupMapping): string[] {
  return [...new Set(groups.map((g) => m.namespaces[g]).filter((ns): ns is string => ns !== undefined))];
}
