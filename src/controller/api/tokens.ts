// /api/v1/tokens: kinfer API tokens. A user creates, lists and revokes its own, with a role no
// higher than its own; an admin those of anyone. The secret is in the creation's answer only.
import type { Router } from 'express';
import { z } from 'zod';
import { ROLES, type ApiToken, type TokenStore } from '../../db/token-store.ts';
import { HttpError } from '../../http/errors.ts';
import { parseOr } from '../../http/plumbing.ts';
import { atLeast } from '../auth/principal.ts';
import { callerOf, requireRole } from './caller.ts';

const noNul = (s: string) => !s.includes('\u0000');
export const CreateToken = z
  .object({
    name: z.string().min(1).max(255).refine(noNul, 'must not contain NUL characters'),
    role: z.enum(ROLES).default('user'),
    /** Admins only: the user the token acts as (default: the caller). */
    owner: z.string().min(1).max(255).refine(noNul, 'must not contain NUL characters').optional(),
    /** Lifetime; default 90 days, at most 10 years. */
    expires_in_days: z.number().int().min(1).max(3650).default(90),
  })
  .strict();

const present = (t: ApiToken) => ({ ...t, status: t.revoked_at ? 'revoked' : t.expires_at && t.expires_at.getTime() <= Date.now() ? 'expired' : 'active' });
const TokenId = z.uuid();

export function tokenRoutes(router: Router, tokens: TokenStore): void {
  router.post('/tokens', async (req, res) => {
    requireRole(req, 'user', 'creating an API token');
    const caller = callerOf(req);
    const body = parseOr(CreateToken, req.body, 'validation_error', 'token');
    if (!atLeast(caller, body.role)) throw new HttpError('forbidden', `a ${caller.role} cannot create a token with the ${body.role} role`);
    if (body.owner !== undefined && body.owner !== caller.subject && caller.role !== 'admin') {
      throw new HttpError('forbidden', `only an admin creates tokens for another user (${body.owner})`);
    }
    const { token, secret } = await tokens.create({
      name: body.name,
      owner: body.owner ?? caller.subject,
      role: body.role,
      expiresAt: new Date(Date.now() + body.expires_in_days * 86_400_000),
    });
    res.status(201).json({ ...present(token), token: secret });
  });

  router.get('/tokens', async (req, res) => {
    const caller = callerOf(req);
    const items = await tokens.list(caller.role === 'admin' ? undefined : caller.subject);
    res.json({ total_count: items.length, items: items.map(present) });
  });

  router.post('/tokens/:id/revoke', async (req, res) => {
    const caller = callerOf(req);
    const id = String(req.params.id);
    const token = TokenId.safeParse(id).success ? await tokens.get(id) : null;
    // Another's token is not found, as another's job.
    if (!token || (token.owner !== caller.subject && caller.role !== 'admin')) throw new HttpError('not_found', `token ${id} not found`);
    res.json(present((await tokens.revoke(id))!));
  });
}
