import { createHmac } from 'node:crypto';

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
