/** The one tenant of a server without API keys, and the owner of objects written before tenants existed. */
export const DEFAULT_TENANT = 'default';

/**
 * The tenant that owns a stored object: its recorded `tenant`, or
 * {@link DEFAULT_TENANT} for an object written before owners were recorded.
 * Anything that is not a non-empty string counts as the default too, so a
 * malformed record never matches a real tenant by accident.
 */
export function ownerTenant(recorded: unknown): string {
  return typeof recorded === 'string' && recorded !== '' ? recorded : DEFAULT_TENANT;
}

/**
 * The secret that signs a tenant's webhooks: its own
 * (`tenants.<name>.webhookSecret` in the config file), else the server's
 * (`MOA_WEBHOOK_SECRET`), else none — and webhooks are then refused.
 */
export function webhookSecretFor(
  tenants: Readonly<Record<string, { webhookSecret?: string }>>,
  tenant: string,
  fallback: string | undefined,
): string | undefined {
  // An own property only: a tenant name is user text and must never reach a prototype.
  const own = Object.hasOwn(tenants, tenant) ? tenants[tenant]?.webhookSecret : undefined;
  return own ?? fallback;
}
