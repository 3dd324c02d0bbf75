// The caller of a REST route, set by the authentication in front of /api/v1, and the role check.
import type { Request } from 'express';
import { HttpError } from '../../http/errors.ts';
import { atLeast, type Principal } from '../auth/principal.ts';

declare module 'express-serve-static-core' {
  interface Request {
    principal?: Principal;
  }
}

/** The caller (set by the authentication in front of every /api/v1 route). */
export const callerOf = (req: Request): Principal => req.principal!;

/** A 403 unless the caller's role is at least `role`. */
export function requireRole(req: Request, role: 'user' | 'admin', doing: string): void {
  const p = callerOf(req);
  if (!atLeast(p, role)) throw new HttpError('forbidden', `${p.subject} is a ${p.role}; ${doing} needs the ${role} role`);
}
