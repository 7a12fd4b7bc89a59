import { DEFAULT_TENANT, ownerTenant } from '@moa-queue/contract';
import type { Response } from 'express';

/** Who a request acts for, as the access gate decided. */
export interface Principal {
  tenant: string;
  /** Sees and acts on every tenant's objects; alone reaches bull-board. */
  admin: boolean;
  /** How the caller was authenticated: a bearer key, a console session, or no keys configured. */
  via: 'key' | 'session' | 'open';
}

/** The principal of a server without keys (loopback only): one tenant, allowed everything. */
export const OPEN_PRINCIPAL: Principal = { tenant: DEFAULT_TENANT, admin: true, via: 'open' };

/** Records the gate's decision on the response. */
export function setPrincipal(response: Response, principal: Principal): void {
  response.locals.principal = principal;
}

/**
 * The principal the gate set. A route behind the gate always has one; its
 * absence is a wiring error, answered as a 500 rather than as access.
 */
export function principalOf(response: Response): Principal {
  const principal = response.locals.principal as Principal | undefined;
  if (!principal) throw new Error('no principal: the route is not behind the access gate');
  return principal;
}

/** Whether a principal may see and act on an object owned by `owner` (admins: any). */
export function canAccess(principal: Principal, owner: unknown): boolean {
  return principal.admin || ownerTenant(owner) === principal.tenant;
}

/** The tenant whose objects a list shows: the caller's own, or undefined (all) for an admin. */
export function listScope(principal: Principal): string | undefined {
  return principal.admin ? undefined : principal.tenant;
}
