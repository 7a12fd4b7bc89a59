import { createHmac } from 'node:crypto';
import { webhookSecretFor } from '@moa-queue/contract';
import type { TenantSettings } from '@moa-queue/moa';

/** Decodes a Standard Webhooks secret: `whsec_` followed by base64 of the key bytes. */
export function decodeWebhookSecret(secret: string): Buffer {
  if (!secret.startsWith('whsec_')) throw new Error('a webhook secret must start with whsec_');
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  if (key.length === 0) throw new Error('the webhook secret is empty');
  return key;
}

/**
 * The `webhook-signature` header of the Standard Webhooks spec:
 * `v1,` and the base64 HMAC-SHA256 of `<id>.<timestamp>.<body>`.
 */
export function signWebhook(key: Buffer, id: string, timestampSeconds: number, body: string): string {
  const digest = createHmac('sha256', key).update(`${id}.${timestampSeconds}.${body}`).digest('base64');
  return `v1,${digest}`;
}

/**
 * The signing key of each tenant's webhooks, chosen by `webhookSecretFor`
 * (the tenant's own `webhookSecret`, else `fallback`, i.e.
 * `MOA_WEBHOOK_SECRET`, else none). Every secret is decoded up front, so a
 * malformed one fails at start naming where it came from.
 */
export function signingKeys(
  tenants: Record<string, TenantSettings> | undefined,
  fallback: string | undefined,
): (tenant: string) => Buffer | undefined {
  const decoded = new Map<string, Buffer>();
  const decode = (secret: string, source: string) => {
    try {
      decoded.set(secret, decodeWebhookSecret(secret));
    } catch (error) {
      throw new Error(`${source}: ${(error as Error).message}`, { cause: error });
    }
  };
  if (fallback) decode(fallback, 'MOA_WEBHOOK_SECRET');
  for (const [name, settings] of Object.entries(tenants ?? {})) {
    if (settings.webhookSecret) decode(settings.webhookSecret, `tenants.${name}.webhookSecret`);
  }
  return (tenant) => {
    const secret = webhookSecretFor(tenants ?? {}, tenant, fallback);
    return secret === undefined ? undefined : decoded.get(secret);
  };
}
