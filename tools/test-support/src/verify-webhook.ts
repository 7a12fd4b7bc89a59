import type { IncomingHttpHeaders } from 'node:http';
import { Webhook } from 'standardwebhooks';

/** A webhook as a test receiver got it. */
export interface ReceivedWebhook {
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * Verifies a received webhook with the `standardwebhooks` package, as a
 * receiver would: the payload, or undefined when `secret` did not sign it.
 */
export function verifyWebhook(secret: string, webhook: ReceivedWebhook): unknown {
  try {
    return new Webhook(secret).verify(webhook.body, {
      'webhook-id': String(webhook.headers['webhook-id']),
      'webhook-timestamp': String(webhook.headers['webhook-timestamp']),
      'webhook-signature': String(webhook.headers['webhook-signature']),
    });
  } catch {
    return undefined;
  }
}
